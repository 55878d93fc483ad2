// What the broker must know of a child's tools to serve 2026 tool calls, read from the child's own
// tools/list once per child and again after it says its tools changed:
// - arguments mirrored into HTTP headers: a property marked `x-mcp-header: Name` is sent by clients
//   as `Mcp-Param-Name` too, and a server processing the body must check the two agree (SEP-2243);
// - what the child declares of a tool's `execution.taskSupport` (2025-11-25): "required" tools
//   cannot be called without the tasks extension and are a task from the start with it;
//   "forbidden" ones never become tasks; undeclared ones may, when they run long (the broker's
//   own tasks, which forgejo-mcp knows nothing of).
import type { IncomingHttpHeaders } from 'node:http';
import type { Bridge } from '../bridge/bridge.ts';
import type { JsonRpcRequest } from '../bridge/jsonrpc.ts';
import { callOnce } from './call-once.ts';
import { decodeHeaderValue, type EnvelopeProblem, HEADER_MISMATCH } from './envelope.ts';

export type ToolEntry = {
  /** Which argument goes in which header (the header name as the schema spells it). */
  headers: { arg: string; header: string }[];
  taskSupport?: 'required' | 'optional' | 'forbidden';
};
type Catalog = Map<string, ToolEntry>;

/** A child's tools/list is read at most this many pages deep. */
const MAX_PAGES = 20;

export class ToolCatalog {
  readonly #byBridge = new WeakMap<Bridge, Promise<Catalog>>();

  /** The child's tools changed: read its list again on the next call. */
  forget(bridges: readonly Bridge[]): void {
    for (const b of bridges) this.#byBridge.delete(b);
  }

  /** What the child's tools/list says of the tool a 2026 tools/call names. */
  async entry(bridge: Bridge, req: JsonRpcRequest): Promise<ToolEntry | undefined> {
    const name = req.params?.['name'];
    if (typeof name !== 'string') return undefined;
    let catalog = this.#byBridge.get(bridge);
    if (!catalog) {
      catalog = readCatalog(bridge);
      this.#byBridge.set(bridge, catalog);
    }
    return (await catalog).get(name);
  }
}

/** Checks a 2026 tools/call's Mcp-Param-* headers against its arguments. */
export function checkParamHeaders(
  entry: ToolEntry | undefined,
  req: JsonRpcRequest,
  headers: IncomingHttpHeaders,
): EnvelopeProblem | undefined {
  const args = (req.params?.['arguments'] ?? {}) as Record<string, unknown>;
  for (const { arg, header } of entry?.headers ?? []) {
    const raw = headers[`mcp-param-${header.toLowerCase()}`];
    const problem = compare(header, Array.isArray(raw) ? raw.join(',') : raw, args[arg]);
    if (problem) return problem;
  }
  return undefined;
}

function compare(header: string, raw: string | undefined, value: unknown): EnvelopeProblem | undefined {
  const mismatch = (message: string): EnvelopeProblem => ({
    status: 400,
    code: HEADER_MISMATCH,
    message,
    data: { header: `Mcp-Param-${header}` },
  });
  if (value === undefined || value === null) {
    return raw === undefined ? undefined : mismatch(`Mcp-Param-${header} is set but the argument is absent`);
  }
  if (raw === undefined)
    return mismatch(`Mcp-Param-${header} header is required when the argument is present`);
  const decoded = decodeHeaderValue(raw.trim());
  if (decoded === undefined) return mismatch(`Mcp-Param-${header} is not valid base64`);
  const expected = typeof value === 'string' ? value : JSON.stringify(value);
  if (decoded !== expected) return mismatch(`Mcp-Param-${header} header does not match the request body`);
  return undefined;
}

async function readCatalog(bridge: Bridge): Promise<Catalog> {
  const catalog: Catalog = new Map();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = await callOnce(bridge, {
      jsonrpc: '2.0',
      id: `param-headers-${page}`,
      method: 'tools/list',
      ...(cursor ? { params: { cursor } } : {}),
    });
    if (!('result' in answer)) break;
    const tools = answer.result['tools'];
    if (!Array.isArray(tools)) break;
    for (const t of tools as {
      name?: unknown;
      inputSchema?: { properties?: Record<string, unknown> };
      execution?: { taskSupport?: unknown };
    }[]) {
      if (typeof t?.name !== 'string') continue;
      const props = t.inputSchema?.properties ?? {};
      const list: { arg: string; header: string }[] = [];
      for (const [arg, schema] of Object.entries(props)) {
        const header = (schema as Record<string, unknown> | null)?.['x-mcp-header'];
        if (typeof header === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(header)) list.push({ arg, header });
      }
      const ts = t.execution?.taskSupport;
      const taskSupport = ts === 'required' || ts === 'optional' || ts === 'forbidden' ? ts : undefined;
      if (list.length || taskSupport)
        catalog.set(t.name, { headers: list, ...(taskSupport ? { taskSupport } : {}) });
    }
    const next = answer.result['nextCursor'];
    if (typeof next !== 'string' || next === '') break;
    cursor = next;
  }
  return catalog;
}
