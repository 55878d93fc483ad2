// Server-rendered pages: they work without JavaScript, escape everything they show, cannot be
// framed, and allow no script at all (CSP). Styles come through a per-response nonce.
import { randomBytes } from 'node:crypto';
import { escapeHtml as e, type OAuthResponse } from './respond.ts';

const SCOPE_TEXT: Record<string, string> = {
  repository: 'repositories (code, pull requests, releases, wiki)',
  issue: 'issues and comments',
  notification: 'notifications',
  organization: 'organisations and teams',
  user: 'your profile',
  misc: 'miscellaneous settings',
  package: 'packages',
  admin: 'site administration',
  activitypub: 'federation',
  all: 'everything',
};

/** "read and write: issues; read: your profile", from a Forgejo scope string. */
export function describeForgejoScope(scope: string): string[] {
  return scope.split(' ').map((w) => {
    const [level, area = ''] = w.split(':');
    const what = SCOPE_TEXT[area] ?? area;
    return level === 'write' ? `read and change ${what}` : `read ${what}`;
  });
}

function page(
  status: number,
  title: string,
  body: string,
  formAction: string[] = [],
  extra: Record<string, string> = {},
): OAuthResponse {
  const nonce = randomBytes(16).toString('base64');
  const csp = [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    `form-action 'self'${formAction.map((s) => ` ${s}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${e(title)}</title>${extra['head'] ?? ''}<style nonce="${nonce}">body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .2rem}ul{padding-left:1.2rem}.actions{display:flex;gap:1rem;margin-top:1.5rem}
button{font-size:1rem;padding:.5rem 1.2rem;border-radius:.3rem;border:1px solid #888;background:#fff;cursor:pointer}
button.primary{background:#2563eb;border-color:#2563eb;color:#fff}.muted{color:#666;font-size:.9rem}</style></head>
<body><main>${body}</main></body></html>`;
  return {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': csp,
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
    },
    body: html,
  };
}

export function errorPage(
  status: number,
  title: string,
  message: string,
  link?: { href: string; text: string },
): OAuthResponse {
  const a = link ? `<p><a id="return-link" href="${e(link.href)}">${e(link.text)}</a></p>` : '';
  // With a way back, the browser also follows it by itself after a moment (no script needed).
  const head = link ? `<meta http-equiv="refresh" content="8;url=${e(link.href)}">` : '';
  return page(status, title, `<h1>${e(title)}</h1><p id="error-message">${e(message)}</p>${a}`, [], { head });
}

export type ConsentView = {
  clientName: string;
  clientId: string;
  redirectUri: string;
  forgejoUrl: string;
  forgejoScope: string;
  requestId: string;
  csrf: string;
  cimd: boolean;
};

/** Where the consent form may send the browser: here, Forgejo (approve) and the client (deny). */
function formTargets(v: ConsentView): string[] {
  const r = new URL(v.redirectUri);
  return [
    new URL(v.forgejoUrl).origin,
    r.protocol === 'http:' || r.protocol === 'https:' ? r.origin : r.protocol,
  ];
}

export function consentPage(v: ConsentView): OAuthResponse {
  const r = new URL(v.redirectUri);
  const where = r.protocol === 'http:' || r.protocol === 'https:' ? r.host : `${r.protocol}//${r.host}`;
  const forgejoHost = new URL(v.forgejoUrl).host;
  const identity = v.cimd
    ? `<p class="muted">Identified by <code>${e(v.clientId)}</code>.</p>`
    : '<p class="muted">This application registered itself with this server; its name is not verified.</p>';
  const body = `<h1>Allow <span id="client-name">${e(v.clientName)}</span> to use Forgejo as you?</h1>
${identity}
<p>After you approve and sign in to <strong>${e(forgejoHost)}</strong>, it will be able, through this server, to:</p>
<ul id="access">${describeForgejoScope(v.forgejoScope)
    .map((s) => `<li>${e(s)}</li>`)
    .join('')}</ul>
<p>You will then be sent back to <strong id="redirect-host">${e(where)}</strong>. Only approve if you started this from that application.</p>
<form id="consent-form" method="post" action="/oauth/consent">
<input type="hidden" name="request" value="${e(v.requestId)}"><input type="hidden" name="csrf" value="${e(v.csrf)}">
<div class="actions"><button id="consent-approve" class="primary" type="submit" name="decision" value="approve">Approve</button>
<button id="consent-deny" type="submit" name="decision" value="deny">Deny</button></div></form>`;
  return page(200, 'Authorize access to Forgejo', body, formTargets(v));
}
