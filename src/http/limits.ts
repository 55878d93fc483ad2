// What a stranger can make the broker hold, and for how long. Every request body must arrive within
// a deadline, and the bodies of requests no bearer token vouches for share one byte budget; an
// answer given before its request's body has fully arrived closes the connection, so the rest is
// never waited for. (/mcp checks its token on the headers and vouches for its body: see
// src/gateway/routes.ts.)
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import type { App } from './server.ts';

export type HttpLimits = {
  /** Headers, and then the whole body, must each arrive within this. */
  bodyTimeoutMs: number;
  /** From routing to the end of the answer, for every route that does not take over its reply. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Bytes of bodies held at once, in total, for requests no bearer token vouches for. */
  unauthenticatedBufferBytes: number;
};

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  bodyTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  // Shorter ones (30 s was tried) made browsers' reused connections race the close during
  // sign-ins against a real Gitea (test/real); 72 s is what Fastify, and the broker, always had.
  keepAliveTimeoutMs: 72_000,
  unauthenticatedBufferBytes: 8 * 1024 * 1024,
};

/** A refusal the limits make: safe to show, with the status and headers to send. */
export type LimitRefusal = { status: number; code: string; message: string; headers: Record<string, string> };

class LimitError extends Error {
  readonly statusCode: number;
  readonly refusal: LimitRefusal;
  constructor(refusal: LimitRefusal) {
    super(refusal.message);
    this.statusCode = refusal.status;
    this.refusal = refusal;
  }
}

const BODY_TIMEOUT: LimitRefusal = {
  status: 408,
  code: 'body_timeout',
  message: 'the request body did not arrive in time',
  headers: { connection: 'close' },
};
const BUSY: LimitRefusal = {
  status: 503,
  code: 'server_busy',
  message: 'too many unauthenticated request bodies in progress; retry shortly',
  headers: { connection: 'close', 'retry-after': '5' },
};
const TOO_SLOW: LimitRefusal = {
  status: 503,
  code: 'request_timeout',
  message: 'the request took too long',
  headers: { 'retry-after': '5' },
};

/** A body over the route's limit: the rest is not read, so the connection closes with the answer. */
function tooLarge(limit: number): LimitRefusal {
  return {
    status: 413,
    code: 'body_too_large',
    message: `the request body is larger than ${limit} bytes`,
    headers: { connection: 'close' },
  };
}

/** The client went away before its body arrived: nobody is left to answer. */
export class BodyAborted extends Error {}

/**
 * The whole body of an authenticated request on a route Fastify does not serve (see RawRoute in
 * server.ts): at most `limit` bytes, within the body deadline; undefined when there is none. Throws
 * a LimitError (answer it with limitRefusal) or BodyAborted.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  timeoutMs: number,
): Promise<Buffer | undefined> {
  if (!hasBody(req)) return Promise.resolve(undefined);
  if (Number(req.headers['content-length']) > limit) return Promise.reject(new LimitError(tooLarge(limit)));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err?: Error) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onAbort).off('close', onAbort);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish(new LimitError(tooLarge(limit)));
      else chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onAbort = () => finish(new BodyAborted('the client closed the request before its body arrived'));
    const timer = setTimeout(() => finish(new LimitError(BODY_TIMEOUT)), timeoutMs);
    req.on('data', onData).once('end', onEnd).once('error', onAbort).once('close', onAbort);
  });
}

/** The deadline for a body, as configured on this app. */
export function bodyTimeoutOf(app: App): number {
  return appLimits.get(app)?.bodyTimeoutMs ?? DEFAULT_HTTP_LIMITS.bodyTimeoutMs;
}

/** The refusal behind an error from a body guard or Fastify's handler timeout, if it is one. */
export function limitRefusal(err: unknown): LimitRefusal | undefined {
  if (err instanceof LimitError) return err.refusal;
  if ((err as { code?: string } | null)?.code === 'FST_ERR_HANDLER_TIMEOUT') return TOO_SLOW;
  return undefined;
}

const vouched = new WeakSet<IncomingMessage>();

/** Marks a request whose sender is authenticated: its body is not charged to the shared budget. */
export function vouchForBody(req: IncomingMessage): void {
  vouched.add(req);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

const appLimits = new WeakMap<object, HttpLimits>();

/** Bodies at most this large are read (and dropped) before a refusal, so the connection can stay. */
const SMALL_BODY = 64 * 1024;

/**
 * Before refusing a request whose body was not read: a small body still on its way (a client's
 * unauthenticated `initialize`, sent in a second packet) is read and dropped within the body
 * deadline, so the answer keeps the connection alive and no unread bytes reset it under the
 * client. Anything larger, or late, gets `Connection: close` on the answer instead.
 */
export async function settleBeforeRefusal(
  app: App,
  req: IncomingMessage,
  res: { setHeader(name: string, value: string): unknown },
): Promise<void> {
  if (req.complete) return;
  const length = Number(req.headers['content-length']);
  const small = req.headers['transfer-encoding'] === undefined && length <= SMALL_BODY;
  if (small) {
    const timeoutMs = appLimits.get(app)?.bodyTimeoutMs ?? DEFAULT_HTTP_LIMITS.bodyTimeoutMs;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        req.off('end', done).off('close', done);
        resolve();
      }
      req.once('end', done).once('close', done);
      req.resume();
    });
  }
  if (!req.complete) res.setHeader('connection', 'close');
}

/** Installs the body deadline, the shared budget and the close-on-early-answer rule on every route. */
export function guardBodies(app: App, limits: HttpLimits): void {
  appLimits.set(app, limits);
  let held = 0;

  app.addHook('preParsing', (req, reply, payload, done) => {
    const raw = req.raw;
    if (!hasBody(raw)) {
      done(null, payload);
      return;
    }
    const charged = !vouched.has(raw);
    // The declared length is reserved up front (at most what the route would read); bytes of a
    // chunked body are charged as they come.
    let reserved = charged
      ? Math.min(Number(raw.headers['content-length']) || 0, req.routeOptions.bodyLimit ?? Infinity)
      : 0;
    if (charged && held + reserved > limits.unauthenticatedBufferBytes) {
      done(new LimitError(BUSY));
      return;
    }
    held += reserved;
    let received = 0;
    const guard = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        if (charged && received > reserved) {
          const more = received - reserved;
          if (held + more > limits.unauthenticatedBufferBytes) {
            cb(new LimitError(BUSY));
            return;
          }
          held += more;
          reserved = received;
        }
        cb(null, chunk);
      },
    });
    // Fastify listens for the guard's errors while it reads; these cover the time it does not.
    guard.on('error', () => {});
    const timer = setTimeout(() => {
      payload.unpipe(guard);
      guard.destroy(new LimitError(BODY_TIMEOUT));
    }, limits.bodyTimeoutMs);
    guard.once('end', () => clearTimeout(timer));
    payload.once('error', (e: Error) => guard.destroy(e));
    reply.raw.once('close', () => {
      clearTimeout(timer);
      held -= reserved;
    });
    payload.pipe(guard);
    done(null, guard);
  });

  app.addHook('onSend', (req, reply, payload, done) => {
    if (!req.raw.complete) reply.header('connection', 'close');
    done(null, payload);
  });
}
