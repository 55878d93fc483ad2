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
button.primary{background:#2563eb;border-color:#2563eb;color:#fff}.muted{color:#666;font-size:.9rem}
fieldset{border:1px solid #ccc;border-radius:.3rem;margin:1rem 0}label{display:inline-block;padding:.3rem 0}
ul#apps{list-style:none;padding:0}li.app{border:1px solid #ddd;border-radius:.4rem;padding:.2rem 1rem .8rem;margin:1rem 0}
h2{font-size:1.1rem;overflow-wrap:anywhere}dl{display:grid;grid-template-columns:auto 1fr;gap:.1rem 1rem;margin:.5rem 0}dt{color:#666}dd{margin:0;overflow-wrap:anywhere}
button.danger{border-color:#b91c1c;color:#b91c1c}.notice{background:#ecfdf5;border:1px solid #10b981;padding:.5rem 1rem;border-radius:.3rem}
#revoke-all{margin:1rem 0}a.button{display:inline-block;padding:.5rem 1.2rem;border-radius:.3rem;background:#2563eb;color:#fff;text-decoration:none}form{margin:0}</style></head>
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
  /** The broker itself, named on the page with where to revoke. */
  publicUrl: string;
  accessTokenTtlMs: number;
  refreshTokenTtlMs: number;
  /** The operator's policy leaves tools that change things: "read and write" is offered. */
  offersWrite: boolean;
};

/** "8 hours", "30 days", "90 minutes": a lifetime as a person says it. */
export function inWords(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  const n = Math.max(1, Math.round(ms / 1000));
  return `${n} second${n === 1 ? '' : 's'}`;
}

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
${modeChoice(v.offersWrite)}
<p id="lifetime" class="muted">Access through <strong id="broker-host">${e(new URL(v.publicUrl).host)}</strong> lasts until you revoke it: the application's tokens are valid ${e(inWords(v.accessTokenTtlMs))} and are renewed as it uses them; after ${e(inWords(v.refreshTokenTtlMs))} without use it has to ask you again. See or revoke it any time at <a id="account-link" href="/account">${e(new URL(v.publicUrl).host)}/account</a>.</p>
<div class="actions"><button id="consent-approve" class="primary" type="submit" name="decision" value="approve">Approve</button>
<button id="consent-deny" type="submit" name="decision" value="deny">Deny</button></div></form>`;
  return page(200, 'Authorize access to Forgejo', body, formTargets(v));
}

function modeChoice(offersWrite: boolean): string {
  if (!offersWrite)
    return '<p id="mode-read-only"><strong>Read only</strong>: this server lets applications read, not change anything.</p><input type="hidden" name="mode" value="read">';
  return `<fieldset id="mode"><legend>What may it do?</legend>
<label><input type="radio" id="mode-read" name="mode" value="read"> <strong>Read only</strong>: look at repositories, issues and pull requests; change nothing</label><br>
<label><input type="radio" id="mode-write" name="mode" value="write" checked> <strong>Read and write</strong>: also create, edit, merge and delete, as far as this server allows</label>
</fieldset>`;
}

function when(ms: number | null): string {
  if (ms === null) return 'never';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

export function signInPage(): OAuthResponse {
  return page(
    200,
    'Connected apps',
    `<h1>Connected apps</h1><p>See which AI applications can use Forgejo as you through this server, and revoke them.</p>
<p><a id="account-sign-in" class="button" href="/account/login">Sign in with Forgejo</a></p>`,
  );
}

/** One app on the connected-apps page: what the user needs to recognise it and decide. */
export type AppRow = {
  grantId: string;
  clientName: string;
  redirectHost: string;
  registration: 'CIMD' | 'DCR';
  mode: 'read' | 'write';
  createdAt: number;
  lastUsedAt: number | null;
  activeSessions: number;
};

export type AccountView = {
  login: string;
  forgejoHost: string;
  csrf: string;
  notice: 'revoked' | 'revoked-all' | undefined;
  apps: AppRow[];
};

export function accountPage(v: AccountView): OAuthResponse {
  const csrf = `<input type="hidden" name="csrf" value="${e(v.csrf)}">`;
  const notice =
    v.notice === 'revoked'
      ? '<p id="notice" class="notice">Access revoked. That application can no longer use Forgejo through this server.</p>'
      : v.notice === 'revoked-all'
        ? '<p id="notice" class="notice">Every application’s access was revoked.</p>'
        : '';
  const apps = v.apps
    .map(
      (
        a,
      ) => `<li class="app" data-grant="${e(a.grantId)}"><h2>${e(a.clientName)} <span class="muted">(${a.registration === 'CIMD' ? 'identified by its metadata document' : 'name not verified'})</span></h2>
<dl><dt>Sends you back to</dt><dd class="redirect-host">${e(a.redirectHost)}</dd>
<dt>Registered by</dt><dd>${a.registration === 'CIMD' ? 'client metadata document (CIMD)' : 'dynamic registration (DCR)'}</dd>
<dt>Access</dt><dd class="mode">${a.mode === 'read' ? 'read only' : 'read and write'}</dd>
<dt>Connected</dt><dd>${e(when(a.createdAt))}</dd><dt>Last used</dt><dd>${e(when(a.lastUsedAt))}</dd>
<dt>Active sessions</dt><dd class="sessions">${a.activeSessions}</dd></dl>
<form method="post" action="/account/revoke">${csrf}<input type="hidden" name="grant" value="${e(a.grantId)}"><button class="danger" type="submit">Revoke</button></form></li>`,
    )
    .join('\n');
  const list = v.apps.length
    ? `<ul id="apps">${apps}</ul><form id="revoke-all" method="post" action="/account/revoke-all">${csrf}<button class="danger" type="submit">Revoke all</button></form>`
    : '<p id="no-apps">No application has access.</p>';
  const body = `<h1>Connected apps</h1>${notice}
<p>Signed in as <strong id="account-login">${e(v.login)}</strong> of ${e(v.forgejoHost)}. These applications can use Forgejo as you through this server. Forgejo itself lists only this server.</p>
${list}
<form method="post" action="/account/logout">${csrf}<button type="submit">Sign out</button></form>`;
  return page(200, 'Connected apps', body);
}
