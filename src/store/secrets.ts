// Secrets at rest (design decision 6): broker-issued secrets are random and high-entropy, so a
// plain SHA-256 is the right hash (no salt or slow KDF needed); Forgejo tokens must be used
// again, so they are sealed with AES-256-GCM under the broker's key.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hash,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/** A new opaque secret: 32 random bytes, base64url, with an optional readable prefix. */
export function newSecret(prefix = ''): string {
  return prefix + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  // The one-shot form: no Hash object per call (the bearer check hashes on every request).
  return hash('sha256', secret, 'hex');
}

/** Constant-time string comparison; unequal lengths compare as unequal without early exit on content. */
export function safeEqual(a: string, b: string): boolean {
  const ab = createHash('sha256').update(a, 'utf8').digest();
  const bb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ab, bb) && a.length === b.length;
}

// v1 values (before key rotation) name no key; v2 values start with the id of the key that sealed
// them, so a database sealed under several keys during a rotation opens value by value.
const LEGACY_VERSION = 'v1';
const VERSION = 'v2';

/**
 * AES-256-GCM with a fresh 96-bit nonce. `context` is bound as associated data, so a sealed value
 * copied to another row (another user's credential) fails to open.
 */
function sealWith(key: Buffer, plaintext: string, context: string): [string, string, string] {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')];
}

function openWith(key: Buffer, iv: string, body: string, tag: string, context: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
}

/** Seals under one key (tests and one-key callers); the value names the key. */
export function seal(key: Buffer, plaintext: string, context: string): string {
  return [VERSION, keyId(key), ...sealWith(key, plaintext, context)].join('.');
}

export function open(key: Buffer, sealed: string, context: string): string {
  return new Keyring(key).open(sealed, context);
}

/** A key for one purpose, derived from the broker's key (HKDF-SHA256), so no two uses share a key. */
export function deriveKey(key: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), purpose, 32));
}

/** A fingerprint of the key, stored in the database to detect a key that changed under it. */
export function keyCheck(key: Buffer): string {
  return createHmac('sha256', key).update('forgejo-mcp-broker key check v1').digest('hex').slice(0, 32);
}

/** The short public name of a key inside sealed values: safe to log, reveals nothing of the key. */
export function keyId(key: Buffer): string {
  return keyCheck(key).slice(0, 12);
}

/** Which key sealed a value: its id, or 'legacy' for a v1 value (sealed before key ids existed). */
export function sealedKeyId(sealed: string): string {
  const [version, kid] = sealed.split('.');
  return version === VERSION && kid ? kid : 'legacy';
}

/**
 * The current key seals; it and the previous keys open. Rotation: the operator makes a new key
 * current and lists the old one as previous, the store re-seals every value under the current key,
 * and once none names the old key it can be dropped.
 */
export class Keyring {
  readonly current: Buffer;
  readonly currentId: string;
  readonly #byId = new Map<string, Buffer>();

  constructor(current: Buffer, previous: readonly Buffer[] = []) {
    this.current = current;
    this.currentId = keyId(current);
    for (const k of [current, ...previous]) this.#byId.set(keyId(k), k);
  }

  /** Every key, current first. */
  get keys(): Buffer[] {
    return [...this.#byId.values()];
  }

  seal(plaintext: string, context: string): string {
    return [VERSION, this.currentId, ...sealWith(this.current, plaintext, context)].join('.');
  }

  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts[0] === VERSION && parts.length === 5) {
      const [, kid, iv, body, tag] = parts as [string, string, string, string, string];
      const key = this.#byId.get(kid);
      if (!key)
        throw new Error(`sealed under key ${kid}, which is neither the current key nor a previous one`);
      return openWith(key, iv, body, tag, context);
    }
    if (parts[0] === LEGACY_VERSION && parts.length === 4) {
      const [, iv, body, tag] = parts as [string, string, string, string];
      // A legacy value names no key: the one that opens it (GCM authenticates) is the right one.
      let last: unknown;
      for (const key of this.#byId.values()) {
        try {
          return openWith(key, iv, body, tag, context);
        } catch (e) {
          last = e;
        }
      }
      throw last instanceof Error ? last : new Error('no key opens this value');
    }
    throw new Error('sealed value is malformed');
  }

  /** The key whose fingerprint is `check`, if the ring holds it. */
  hasCheck(check: string): boolean {
    return this.keys.some((k) => keyCheck(k) === check);
  }
}
