// A self-signed certificate for a local HTTPS server (Client ID Metadata Documents in tests),
// made with Debian's openssl command.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function selfSignedCert(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'broker-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export type Route = { status?: number; body: string | Buffer; headers?: Record<string, string> };

/** An HTTPS server on 127.0.0.1 serving fixed routes; `hits` counts requests per path. */
export async function startHttpsServer(
  tls: { key: string; cert: string },
  routes: Record<string, Route | (() => Route)>,
): Promise<{ origin: string; hits: Map<string, number>; server: Server; close(): Promise<void> }> {
  const hits = new Map<string, number>();
  const server = createServer(tls, (req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const entry = routes[path];
    const route = typeof entry === 'function' ? entry() : entry;
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(route.status ?? 200, { 'content-type': 'application/json', ...route.headers })
      .end(route.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    origin: `https://localhost:${port}`,
    hits,
    server,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
