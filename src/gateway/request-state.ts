// The requestState a 2026 client carries between rounds of a multi-round-trip call: which parked
// call it resumes, in which broker process, for whom, and which round, under an HMAC the client
// cannot forge. Replicas share the key (derived from BROKER_SECRET_KEY), so a state another
// replica (or this one before a restart) sealed is recognised as genuine although its parked call
// is not here; a tampered, foreign-key or expired state is refused.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type StateClaims = {
  /** The parked call's handle. */
  call: string;
  userId: number;
  grantId: string;
  method: string;
  /** Which round of questions this state answers; an older round's state is stale. */
  round: number;
  /** Expiry, ms since the epoch. */
  exp: number;
  /** The broker process that parked the call (a random name per process). */
  by: string;
};

const PREFIX = 'rs1.';

export class RequestStateSealer {
  readonly #key: Buffer;
  /** This process's name in the states it seals. */
  readonly process = randomBytes(9).toString('base64url');

  /** `key`: shared by every replica; a random one confines states to this process. */
  constructor(key: Buffer = randomBytes(32)) {
    this.#key = key;
  }

  seal(c: Omit<StateClaims, 'by'>): string {
    const body = Buffer.from(
      JSON.stringify([c.call, c.userId, c.grantId, c.method, c.round, c.exp, this.process]),
    ).toString('base64url');
    return `${PREFIX}${body}.${this.#mac(body)}`;
  }

  /** The claims of a state sealed under this key that has not expired, else undefined. */
  open(state: string, now = Date.now()): StateClaims | undefined {
    if (!state.startsWith(PREFIX) || state.length > 1024) return undefined;
    const [body, mac, extra] = state.slice(PREFIX.length).split('.');
    if (!body || !mac || extra !== undefined) return undefined;
    const want = Buffer.from(this.#mac(body));
    const got = Buffer.from(mac);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (!Array.isArray(v) || v.length !== 7) return undefined;
    const [call, userId, grantId, method, round, exp, by] = v as unknown[];
    if (
      typeof call !== 'string' ||
      typeof userId !== 'number' ||
      typeof grantId !== 'string' ||
      typeof method !== 'string' ||
      typeof round !== 'number' ||
      typeof exp !== 'number' ||
      typeof by !== 'string' ||
      exp < now
    )
      return undefined;
    return { call, userId, grantId, method, round, exp, by };
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#key).update(PREFIX).update(body).digest('base64url');
  }
}
