// Redirect URI rules: https anywhere; http only on loopback (RFC 8252 §7.3); custom schemes only
// for public clients (§7.1); never a fragment. Loopback http URIs match on any port.
import { isLoopbackHost } from '../config/loopback.ts';

// Schemes a browser will not navigate to as an app's redirect, or that run, show or fetch something
// in the broker's name (view-source: of any page, script, local files, browser internals).
const FORBIDDEN_SCHEMES = new Set([
  'javascript:',
  'vbscript:',
  'data:',
  'blob:',
  'file:',
  'filesystem:',
  'about:',
  'view-source:',
  'jar:',
  'mhtml:',
  'intent:',
  'chrome:',
  'chrome-untrusted:',
  'edge:',
  'resource:',
  'ws:',
  'wss:',
  'ftp:',
]);

/** The problem with a redirect URI, or undefined when it is acceptable. */
export function redirectUriProblem(raw: unknown, publicClient: boolean): string | undefined {
  if (typeof raw !== 'string' || raw === '') return 'redirect URIs must be non-empty strings';
  if (raw.length > 2000) return 'redirect URI is too long';
  if (raw.includes('#')) return `redirect URI must not have a fragment: ${raw}`;
  // The URL parser would silently drop leading blanks and tabs; what is stored must be what is used.
  if (/[\s\p{C}]/u.test(raw)) return 'redirect URI must not contain blanks or control characters';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `redirect URI is not an absolute URI: ${raw}`;
  }
  if (url.username || url.password) return 'redirect URI must not contain credentials';
  if (url.protocol === 'https:') return url.hostname ? undefined : 'https redirect URI needs a host';
  if (url.protocol === 'http:') {
    return isLoopbackHost(url.hostname)
      ? undefined
      : `http redirect URIs are allowed only on loopback: ${raw}`;
  }
  if (FORBIDDEN_SCHEMES.has(url.protocol)) return `redirect URI scheme ${url.protocol} is not allowed`;
  if (!publicClient) return `custom-scheme redirect URIs are allowed only for public clients: ${raw}`;
  return undefined;
}

/** Exact match, except that an http loopback URI matches a registered one on any port. */
export function matchRedirectUri(registered: string[], requested: string): boolean {
  if (registered.includes(requested)) return true;
  let req: URL;
  try {
    req = new URL(requested);
  } catch {
    return false;
  }
  if (req.protocol !== 'http:' || !isLoopbackHost(req.hostname) || requested.includes('#')) return false;
  return registered.some((r) => {
    const reg = URL.canParse(r) ? new URL(r) : undefined;
    return (
      reg?.protocol === 'http:' &&
      reg.hostname === req.hostname &&
      reg.pathname === req.pathname &&
      reg.search === req.search
    );
  });
}
