import type { ServerResponse } from 'node:http';
import type { Sink } from '../bridge/bridge.ts';
import type { JsonRpcMessage } from '../bridge/jsonrpc.ts';
import { type SseOptions, SseStream } from './sse.ts';

export type Accepts = { json: boolean; sse: boolean };

// A client sends the same Accept header on every request: the last few answers are remembered.
const ACCEPT_MEMO = 16;
const acceptMemo = new Map<string, Accepts>();

/** What the client's Accept header allows; a missing header or `*\/*` allows both. */
export function parseAccept(header: string | undefined): Accepts {
  if (!header) return { json: true, sse: true };
  const known = acceptMemo.get(header);
  if (known) return known;
  const parsed = Object.freeze(readAccept(header));
  if (acceptMemo.size >= ACCEPT_MEMO) acceptMemo.delete(acceptMemo.keys().next().value as string);
  acceptMemo.set(header, parsed);
  return parsed;
}

function readAccept(header: string): Accepts {
  const types = header.split(',').map((t) => (t.split(';')[0] ?? '').trim().toLowerCase());
  const any = types.includes('*/*');
  return {
    json: any || types.includes('application/json') || types.includes('application/*'),
    sse: any || types.includes('text/event-stream') || types.includes('text/*'),
  };
}

/**
 * The answer to one POST carrying requests. It stays plain JSON, the cheapest answer, while the
 * responses are all there is to say; the first message that must precede a response (progress, a
 * server-to-client request) turns it into an SSE stream. A client that accepts only one of the two
 * gets only that one.
 */
export class PostResponse {
  readonly #res: ServerResponse;
  readonly #accepts: Accepts;
  readonly #sseOptions: SseOptions;
  readonly #headers: Record<string, string>;
  readonly #batch: boolean;
  #expected: number;
  readonly #finals: JsonRpcMessage[] = [];
  #sse?: SseStream;
  #done = false;
  #status = 200;
  readonly #aborted: (() => void)[] = [];

  constructor(
    res: ServerResponse,
    opts: {
      accepts: Accepts;
      expected: number;
      batch: boolean;
      sse: SseOptions;
      headers?: Record<string, string>;
    },
  ) {
    this.#res = res;
    this.#accepts = opts.accepts;
    this.#expected = opts.expected;
    this.#batch = opts.batch;
    this.#sseOptions = opts.sse;
    this.#headers = opts.headers ?? {};
    res.on('close', () => {
      if (this.#done) return;
      this.#done = true;
      for (const cb of this.#aborted.splice(0)) cb();
    });
    // Without JSON, the stream starts at once: nothing would otherwise tell a proxy it is alive.
    if (!this.#accepts.json) this.#openSse();
  }

  /** Called when the client goes away before every response was sent. */
  onAbort(cb: () => void): void {
    this.#aborted.push(cb);
  }

  get done(): boolean {
    return this.#done;
  }

  /** One fewer response to wait for (a request answered some other way, e.g. parked). */
  expectOneLess(): void {
    this.#expected--;
    this.#maybeFinish();
  }

  /** The HTTP status of the answer if it stays plain JSON (a 2026 error that has its own, e.g. 400). */
  setStatus(status: number): void {
    this.#status = status;
  }

  readonly sink: Sink = {
    send: (msg, final) => this.send(msg, final),
  };

  send(msg: JsonRpcMessage, final: boolean): boolean {
    if (this.#done) return false;
    if (!final && !this.#sse) {
      if (!this.#accepts.sse) return false;
      this.#openSse();
    }
    if (this.#sse) {
      if (!this.#sse.send(msg)) return false;
    }
    if (final) {
      if (!this.#sse) this.#finals.push(msg);
      this.#expected--;
      this.#maybeFinish();
    }
    return true;
  }

  #openSse(): void {
    this.#sse = new SseStream(this.#res, this.#sseOptions, this.#headers);
    for (const m of this.#finals.splice(0)) this.#sse.send(m);
  }

  #maybeFinish(): void {
    if (this.#expected > 0 || this.#done) return;
    this.#done = true;
    if (this.#sse) {
      this.#sse.end();
      return;
    }
    const body = JSON.stringify(this.#batch ? this.#finals : this.#finals[0]);
    this.#res.writeHead(this.#status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...this.#headers,
    });
    this.#res.end(body);
  }
}
