// A reference, not a product: the least an HTTP front to a stdio MCP server can do. node:http, one
// child, ids rewritten, JSON responses; no auth, no sessions beyond one fixed id, no SSE, no limits.
// The bench runs it beside the broker so the cost of the extra process hop and of HTTP itself
// (which any front pays) can be told apart from the broker's own work.
// Usage: node bench/relay/bare-relay.ts <port> <command> [args...]
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

const [portArg, command, ...args] = process.argv.slice(2);
if (!portArg || !command) throw new Error('usage: bare-relay.ts <port> <command> [args...]');
const SESSION = 'bare-relay-session';

const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
child.on('exit', () => process.exit(1));
type Pending = (message: Record<string, unknown>) => void;
const pending = new Map<number, Pending>();
let nextId = 1;
createInterface({ input: child.stdout }).on('line', (line) => {
  let msg: Record<string, unknown>;
  try {
    msg = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const answer = typeof msg['id'] === 'number' ? pending.get(msg['id']) : undefined;
  if (answer && ('result' in msg || 'error' in msg)) {
    pending.delete(msg['id'] as number);
    answer(msg);
  }
});

function ask(method: string, params: unknown): Promise<Record<string, unknown>> {
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
  });
}

const init = await ask('initialize', {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 'bare-relay', version: '0' },
});
child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);

const server = createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const reply = (body: Record<string, unknown>) =>
      res
        .writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': SESSION })
        .end(JSON.stringify({ ...body, jsonrpc: '2.0', id: msg['id'] }));
    if (msg['id'] === undefined) {
      res.writeHead(202).end();
    } else if (msg['method'] === 'initialize') {
      reply({ result: init['result'] });
    } else {
      void ask(msg['method'] as string, msg['params']).then(({ id: _, ...rest }) => reply(rest));
    }
  });
});
server.listen(Number(portArg), '127.0.0.1');
