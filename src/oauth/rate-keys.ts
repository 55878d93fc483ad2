// Rate-limit keys. All Claude.ai users arrive from Anthropic's addresses, so a key that is only the
// IP would let one user lock out everyone: keys name the client where there is one, and the
// per-IP bucket is a much larger ceiling against floods.
import { isCimdClientId } from './cimd.ts';
import type { OAuthRequest, Params } from './respond.ts';

/** `key` is limited at the configured rate, `ip` at ten times it; no `key` means the IP bucket alone. */
export type RateKeys = { key: string | undefined; ip: string };

function clientIdOf(req: OAuthRequest, params: Params): string {
  const v = params['client_id'];
  if (typeof v === 'string') return v.slice(0, 200);
  const basic = /^Basic (\S+)$/i.exec(String(req.headers['authorization'] ?? ''));
  if (basic)
    return (
      Buffer.from(basic[1] as string, 'base64')
        .toString('utf8')
        .split(':')[0]
        ?.slice(0, 200) ?? ''
    );
  return '';
}

export function rateKeys(
  endpoint: 'register' | 'manage' | 'authorize' | 'token' | 'consent',
  req: OAuthRequest,
): RateKeys {
  const ip = `ip:${req.ip}`;
  // A registration's management calls are its own, as a registered client's tokens are.
  if (endpoint === 'manage') return { key: `manage:${(req.params?.['clientId'] ?? '').slice(0, 200)}`, ip };
  // Registration has its own per-IP bucket; consent and callback are browser navigations, where
  // the IP is the user's own (or their office's), so only the generous IP ceiling applies.
  if (endpoint === 'register') return { key: undefined, ip: `register:${req.ip}` };
  if (endpoint === 'consent') return { key: undefined, ip };
  if (endpoint === 'authorize') return { key: `authorize:${clientIdOf(req, req.query)}:${req.ip}`, ip };
  const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Params;
  const clientId = clientIdOf(req, body);
  // A registered client's tokens are its own (a leaked secret's flood hurts only that client); a
  // metadata-document client id is shared by every user of that application, so add the IP.
  return { key: isCimdClientId(clientId) ? `token:${clientId}:${req.ip}` : `token:${clientId}`, ip };
}
