// A misbehaving HTTP client on a raw socket: it sends its headers, then part of a body at once, then
// drips or stalls, and reports what the server answered and when it closed the connection. The
// tests of the broker's deadlines and budgets use it as the attacker.
import { connect } from 'node:net';

export type SlowRequest = {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** The Content-Length declared; the body is never more than this. */
  contentLength: number;
  /** Body bytes sent right after the headers (in 64 KiB writes, as fast as the server takes them). */
  sendAtOnce?: number;
  /** Then one byte every this many ms (none when absent: the client stalls). */
  dripEveryMs?: number;
  /** The client gives up and closes after this long. */
  giveUpMs: number;
  /** Incomplete header block: sent line by line at `dripEveryMs` and never finished. */
  dripHeaders?: boolean;
};

export type SlowOutcome = {
  /** The status the server answered, if it answered. */
  status: number | undefined;
  /** The server's response head (status line and headers), for assertions on Connection. */
  head: string;
  /** Milliseconds from the headers being sent to the first response byte. */
  answeredAfterMs: number | undefined;
  /** Milliseconds from the headers being sent to the connection closing, undefined if the client gave up. */
  closedAfterMs: number | undefined;
  /** Body bytes the client managed to write. */
  bytesSent: number;
};

export function slowRequest(url: string, r: SlowRequest): Promise<SlowOutcome> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), hostname);
    let start = 0;
    let response = '';
    let answeredAfterMs: number | undefined;
    let bytesSent = 0;
    let closed = false;
    let gaveUp = false;
    let drip: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      gaveUp = true;
      s.destroy();
    }, r.giveUpMs);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      if (answeredAfterMs === undefined) answeredAfterMs = Date.now() - start;
      if (response.length < 4096) response += d.toString('latin1');
    });
    s.on('close', () => {
      closed = true;
      clearTimeout(giveUp);
      clearInterval(drip);
      const head = response.split('\r\n\r\n')[0] ?? '';
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      resolve({
        status: status === undefined ? undefined : Number(status),
        head,
        answeredAfterMs,
        closedAfterMs: gaveUp ? undefined : Date.now() - start,
        bytesSent,
      });
    });
    s.on('connect', () => {
      const headers = {
        host: `${hostname}:${port}`,
        'content-type': 'application/json',
        'content-length': String(r.contentLength),
        ...r.headers,
      };
      const lines = [
        `${r.method ?? 'POST'} ${r.path} HTTP/1.1`,
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      start = Date.now();
      if (r.dripHeaders) {
        s.write(`${lines.join('\r\n')}\r\n`);
        let i = 0;
        drip = setInterval(() => {
          if (!closed) s.write(`x-drip-${i++}: 1\r\n`);
        }, r.dripEveryMs ?? 1000);
        return;
      }
      s.write(`${lines.join('\r\n')}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let left = Math.min(r.sendAtOnce ?? 0, r.contentLength);
      const pump = (): void => {
        while (left > 0 && !closed) {
          const n = Math.min(left, chunk.length);
          left -= n;
          bytesSent += n;
          if (!s.write(chunk.subarray(0, n))) {
            s.once('drain', pump);
            return;
          }
        }
        if (left === 0 && r.dripEveryMs !== undefined && !closed) {
          drip = setInterval(() => {
            if (closed || bytesSent >= r.contentLength) return;
            bytesSent += 1;
            s.write(' ');
          }, r.dripEveryMs);
        }
      };
      pump();
    });
  });
}
