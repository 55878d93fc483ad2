// A token bucket per key, in memory, in a bounded map (the least recently used key is dropped
// first, which only ever forgives). Enough for one process; replicas each limit their own share.
export class RateLimiter {
  readonly #perMinute: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perMinute: number, maxKeys = 50_000) {
    this.#perMinute = perMinute;
    this.#maxKeys = maxKeys;
  }

  /** The seconds until `key` has a token (0: now), without taking one or remembering the key. */
  wait(key: string, now = Date.now()): number {
    const b = this.#buckets.get(key);
    if (!b) return 0;
    const rate = this.#perMinute / 60_000;
    const tokens = Math.min(this.#perMinute, b.tokens + (now - b.at) * rate);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / rate / 1000));
  }

  /** Takes one token: 0 when allowed, else the seconds until one is available. */
  take(key: string, now = Date.now()): number {
    const rate = this.#perMinute / 60_000;
    const b = this.#buckets.get(key) ?? { tokens: this.#perMinute, at: now };
    this.#buckets.delete(key);
    b.tokens = Math.min(this.#perMinute, b.tokens + (now - b.at) * rate);
    b.at = now;
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value as string);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
  }
}
