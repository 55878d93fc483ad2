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

// What a token looks like in free text: JWTs, Forgejo/Gitea/GitHub-style prefixed tokens, bare
// 40-hex tokens (Forgejo's access tokens; git commit ids look the same and are scrubbed too), and
// whatever follows `Bearer`, `token` or a `*token=`/`secret=`/`password=`-like key.
const TOKEN_SHAPES: readonly RegExp[] = [
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  /\b(?:gt[oa]|gh[pousr]|glpat|github_pat)[_-][A-Za-z0-9_-]{8,}/g,
  // The broker's own: access, refresh, code, client-secret and registration-access tokens.
  /\bmcp(?:at|rt|ac|cs|rat)_[A-Za-z0-9_-]{8,}/g,
  /\b[0-9a-fA-F]{32,}\b/g,
  /\b(Bearer|token|Basic)(\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
  /\b([A-Za-z_]*(?:token|secret|password|passwd|key|code))(["']?\s*[:=]\s*["']?)[^\s"'&,;]{4,}/gi,
];

/** A secret this short would match ordinary words; the caller's secrets are tokens, far longer. */
const MIN_SECRET = 6;

/**
 * Free text (a child's stderr line) with every given secret value, and anything shaped like a
 * token, replaced by CENSOR. A line cut at a length bound may end in the first part of a secret:
 * that is censored too.
 */
export function scrubText(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s.length >= MIN_SECRET) out = out.split(s).join(CENSOR);
  for (const re of TOKEN_SHAPES)
    out = out.replace(re, (_match, key?: unknown, sep?: unknown) =>
      typeof key === 'string' && typeof sep === 'string' ? `${key}${sep}${CENSOR}` : CENSOR,
    );
  for (const s of secrets) {
    for (let n = Math.min(s.length - 1, out.length); n >= MIN_SECRET; n--) {
      if (out.endsWith(s.slice(0, n))) {
        out = `${out.slice(0, out.length - n)}${CENSOR}`;
        break;
      }
    }
  }
  return out;
}
