// Rate-limit keys. All Claude.ai users arrive from Anthropic's addresses, so a key that is only the
// IP would let one user lock out everyone: keys name the client where there is one, and the
// per-IP bucket is a much larger ceiling against floods. A client id in a request proves nothing,
// though, so the token endpoint charges a client's bucket only once the request proved it is that
// client (src/oauth/token.ts); until then a failure is the source's.
import { isCimdClientId } from './cimd.ts';
import type { OAuthRequest, OAuthResponse } from './respond.ts';

/**
 * Checked before the handler runs: `key` is taken at the configured rate, `ip` at ten times it, and
 * `failures` (the source's failed attempts) must not be exhausted.
 */
export type RateKeys = { key: string | undefined; ip: string; failures: string | undefined };

/** Token buckets at the configured rate, as the handlers charge them. */
export type RateLimits = {
  /** Takes one request: 0 when allowed, else the seconds until one is available. */
  take(key: string): number;
  /** The seconds until `key` has a request left (0: now), taking nothing. */
  wait(key: string): number;
};

export function rateKeys(
  endpoint: 'register' | 'manage' | 'authorize' | 'token' | 'consent',
  req: OAuthRequest,
): RateKeys {
  const ip = `ip:${req.ip}`;
  // A registration's management calls come from the client's own software; the client id in the
  // path is not authenticated yet, so the source is part of the key (as for authorize).
  if (endpoint === 'manage') {
    const clientId = (req.params?.['clientId'] ?? '').slice(0, 200);
    return { key: `manage:${clientId}:${req.ip}`, ip, failures: undefined };
  }
  // Registration has its own per-IP bucket; consent and callback are browser navigations, where
  // the IP is the user's own (or their office's), so only the generous IP ceiling applies.
  if (endpoint === 'register') return { key: undefined, ip: `register:${req.ip}`, failures: undefined };
  if (endpoint === 'consent') return { key: undefined, ip, failures: undefined };
  if (endpoint === 'authorize') {
    const v = req.query['client_id'];
    const clientId = typeof v === 'string' ? v.slice(0, 200) : '';
    return { key: `authorize:${clientId}:${req.ip}`, ip, failures: undefined };
  }
  return { key: undefined, ip, failures: failureKey(req.ip) };
}

/** Token and revoke requests that failed before the caller proved which client it is, per source. */
export function failureKey(ip: string): string {
  return `fail:${ip}`;
}

/**
 * A registered client's tokens are its own (a leaked secret's flood hurts only that client); a
 * metadata-document client id is shared by every user of that application, so add the IP.
 */
export function clientKey(clientId: string, ip: string): string {
  return isCimdClientId(clientId) ? `token:${clientId}:${ip}` : `token:${clientId}`;
}

export function slowDown(waitS: number): OAuthResponse {
  return {
    status: 429,
    headers: { 'retry-after': String(waitS), 'cache-control': 'no-store' },
    body: { error: 'slow_down', error_description: `too many requests; retry in ${waitS} s` },
  };
}
