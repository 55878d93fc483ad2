// Secrets at rest (design decision 6): broker-issued secrets are random and high-entropy, so a
// plain SHA-256 is the right hash (no salt or slow KDF needed); Forgejo tokens must be used
// again, so they are sealed with AES-256-GCM under the broker's key.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/** A new opaque secret: 32 random bytes, base64url, with an optional readable prefix. */
export function newSecret(prefix = ''): string {
  return prefix + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time string comparison; unequal lengths compare as unequal without early exit on content. */
export function safeEqual(a: string, b: string): boolean {
  const ab = createHash('sha256').update(a, 'utf8').digest();
  const bb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ab, bb) && a.length === b.length;
}

const VERSION = 'v1';

/**
 * AES-256-GCM with a fresh 96-bit nonce. `context` is bound as associated data, so a sealed value
 * copied to another row (another user's credential) fails to open.
 */
export function seal(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [
    VERSION,
    iv.toString('base64url'),
    body.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
  ].join('.');
}

export function open(key: Buffer, sealed: string, context: string): string {
  const [version, iv, body, tag] = sealed.split('.');
  if (version !== VERSION || !iv || body === undefined || !tag) throw new Error('sealed value is malformed');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
}

/** A key for one purpose, derived from the broker's key (HKDF-SHA256), so no two uses share a key. */
export function deriveKey(key: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), purpose, 32));
}

/** A fingerprint of the key, stored in the database to detect a key that changed under it. */
export function keyCheck(key: Buffer): string {
  return createHmac('sha256', key).update('forgejo-mcp-broker key check v1').digest('hex').slice(0, 32);
}
