// A streaming reverse proxy that adds one bearer token to every request and changes nothing else:
// Host, Origin and every other header reach the upstream as the client sent them. It stands in
// for the OAuth half of a client (the conformance suite's server scenarios send no token).
import { createServer, request as httpRequest, type Server } from 'node:http';

export async function bearerProxy(
  upstreamPort: number,
  token: string,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    const up = httpRequest(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers, setHost: false },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server };
}
