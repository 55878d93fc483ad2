// A reverse proxy that sends nothing of a response until the upstream has finished it: the
// misbehaving proxy that streaming tests must be able to catch.
import { createServer, request as httpRequest, type Server } from 'node:http';

export function bufferingProxy(upstreamPort: number): Server {
  return createServer((req, res) => {
    const up = httpRequest(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          res.end(Buffer.concat(chunks));
        });
      },
    );
    up.on('error', () => res.destroy());
    // A stream that never ends (an MCP client's standalone GET) is dropped upstream when the client goes.
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
}
