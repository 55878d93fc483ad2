import type { ServerResponse } from 'node:http';

export type SseOptions = {
  /** Bytes that may wait unsent for a slow reader before its stream is dropped. */
  maxQueuedBytes: number;
  keepAliveMs: number;
};

export const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  // nginx and some proxies buffer responses unless told not to.
  'x-accel-buffering': 'no',
} as const;

/** setTimeout's longest delay; a later end comes early, and the client reconnects. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One Server-Sent Events stream. A reader that stays too slow loses its stream, not the broker's
 * memory: once more than `maxQueuedBytes` wait in the socket buffer the stream is destroyed.
 */
export class SseStream {
  readonly #res: ServerResponse;
  readonly #opts: SseOptions;
  readonly #keepAlive: NodeJS.Timeout;
  #closed = false;
  readonly #onClose: (() => void)[] = [];

  constructor(res: ServerResponse, opts: SseOptions, headers: Record<string, string> = {}) {
    this.#res = res;
    this.#opts = opts;
    res.writeHead(200, { ...SSE_HEADERS, ...headers });
    res.flushHeaders();
    res.on('close', () => this.#finish());
    this.#keepAlive = setInterval(() => this.#write(': keepalive\n\n'), opts.keepAliveMs);
    this.#keepAlive.unref();
  }

  get open(): boolean {
    return !this.#closed;
  }

  onClose(cb: () => void): void {
    if (this.#closed) cb();
    else this.#onClose.push(cb);
  }

  /** Sends one JSON-RPC message as an SSE `message` event; false when the stream is gone. */
  send(msg: unknown): boolean {
    return this.#write(`event: message\ndata: ${JSON.stringify(msg)}\n\n`);
  }

  #write(frame: string): boolean {
    if (this.#closed) return false;
    if (this.#res.writableLength > this.#opts.maxQueuedBytes) {
      this.#res.destroy();
      this.#finish();
      return false;
    }
    this.#res.write(frame);
    return true;
  }

  /**
   * Ends the stream at `at` (epoch ms): a standalone stream lives no longer than the access token
   * that opened it; the client reconnects with its new one.
   */
  endAt(at: number): void {
    const timer = setTimeout(() => this.end(), Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS));
    timer.unref();
    this.onClose(() => clearTimeout(timer));
  }

  end(): void {
    if (this.#closed) return;
    this.#res.end();
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepAlive);
    for (const cb of this.#onClose.splice(0)) cb();
  }
}
