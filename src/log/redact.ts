// Secret-bearing keys are censored wherever they appear in a logged object, to a fixed depth.
// This replaces pino's path-based redaction, which interprets ~80 wildcard paths on every line
// (a sixth of the broker's CPU per MCP call in the bench profile); one walk with a set lookup per
// key costs next to nothing and copies only the branches it censors.
import { pino } from 'pino';

export const CENSOR = '[redacted]';

// Compared case-insensitively: header objects come in either case.
const SECRET_KEYS = new Set(
  [
    'authorization',
    'cookie',
    'set-cookie',
    'token',
    'access_token',
    'refresh_token',
    'id_token',
    'accessToken',
    'refreshToken',
    'code',
    'code_verifier',
    'codeVerifier',
    'client_secret',
    'clientSecret',
    'registration_access_token',
    'registrationToken',
    'secret',
    'password',
    'state',
    'csrf',
    'key',
    'secretKey',
    'FORGEJO_ACCESS_TOKEN',
    'FORGEJO_CLIENT_SECRET',
    'BROKER_SECRET_KEY',
  ].map((k) => k.toLowerCase()),
);

/** Deeper than any object the broker logs; bounds the walk on cyclic or huge input. */
const MAX_DEPTH = 5;

export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase());
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * The value with every secret key's value replaced by CENSOR. The input is never changed: an
 * object or array is copied only when something inside it is censored. Errors are serialized the
 * way pino would, so their own fields are checked too.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const r = redactSecrets(value[i], depth + 1);
      if (r !== value[i]) {
        out ??= value.slice();
        out[i] = r;
      }
    }
    return (out ?? value) as T;
  }
  const source: object = value instanceof Error ? pino.stdSerializers.err(value) : value;
  if (source === value && !isPlain(value)) return value;
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(source)) {
    const v = (source as Record<string, unknown>)[key];
    const r = isSecretKey(key) && v !== undefined ? CENSOR : redactSecrets(v, depth + 1);
    if (r !== v) {
      out ??= { ...source };
      out[key] = r;
    }
  }
  return (out ?? (source === value ? value : source)) as T;
}
