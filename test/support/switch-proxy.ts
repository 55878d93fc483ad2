// A loopback HTTP switch: forwards every request to the one upstream it points at now, so a test
// can move a client (and its Mcp-Session-Id) from one broker replica to another mid-session.
import { createServer, request } from 'node:http';

export type Switch = {
  url: string;
  /** Where requests go from now on (`http://host:port`); requests under way stay where they are. */
  point(upstream: string): void;
  close(): Promise<void>;
};

export async function startSwitch(upstream: string): Promise<Switch> {
  let target = new URL(upstream);
  const server = createServer((req, res) => {
    const up = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    point(u) {
      target = new URL(u);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
