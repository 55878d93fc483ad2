// RS256 JSON Web Tokens as Forgejo signs them: one RSA key per emulator instance, its kid the
// RFC 7638 thumbprint, published in the JWKS.
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';

export type Jwk = { kty: 'RSA'; alg: 'RS256'; use: 'sig'; kid: string; n: string; e: string };

export type SigningKey = { privateKey: KeyObject; jwk: Jwk };

export function newSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { n, e } = publicKey.export({ format: 'jwk' });
  if (typeof n !== 'string' || typeof e !== 'string') throw new Error('RSA key without n/e');
  const kid = createHash('sha256')
    .update(JSON.stringify({ e, kty: 'RSA', n }))
    .digest('base64url');
  return { privateKey, jwk: { kty: 'RSA', alg: 'RS256', use: 'sig', kid, n, e } };
}

const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export function signJwt(key: SigningKey, claims: Record<string, unknown>): string {
  const head = `${b64json({ alg: 'RS256', kid: key.jwk.kid, typ: 'JWT' })}.${b64json(claims)}`;
  return `${head}.${sign('sha256', Buffer.from(head), key.privateKey).toString('base64url')}`;
}

/**
 * The claims of a token this key signed, or undefined when it is malformed, signed otherwise, expired
 * (`exp` not after now) or issued in the future (`iat` after now), as Forgejo's JWT parser decides.
 */
export function verifyJwt(jwk: Jwk, token: string, nowSeconds: number): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [head, body, sig] = parts as [string, string, string];
  try {
    const header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as { alg?: unknown };
    if (header.alg !== 'RS256') return undefined;
    const publicKey = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
    if (!verify('sha256', Buffer.from(`${head}.${body}`), publicKey, Buffer.from(sig, 'base64url'))) {
      return undefined;
    }
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown;
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
    const { exp, iat } = claims as { exp?: unknown; iat?: unknown };
    if (typeof exp === 'number' && exp <= nowSeconds) return undefined;
    if (typeof iat === 'number' && iat > nowSeconds) return undefined;
    return claims as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
