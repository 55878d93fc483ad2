// 2026 tools/call parameters mirrored into HTTP headers: a tool whose input schema marks a property
// with `x-mcp-header: Name` has clients send it as `Mcp-Param-Name` too, so intermediaries can
// route on it, and a server processing the body must check that the two agree (SEP-2243). The
// broker learns the marks from the child's own tools/list, once per child and again after it says
// its tools changed.
import type { IncomingHttpHeaders } from 'node:http';
import type { Bridge } from '../bridge/bridge.ts';
import type { JsonRpcRequest } from '../bridge/jsonrpc.ts';
import { callOnce } from './call-once.ts';
import { decodeHeaderValue, type EnvelopeProblem, HEADER_MISMATCH } from './envelope.ts';

/** Per tool: which argument goes in which header (the header name as the schema spells it). */
type Marks = Map<string, { arg: string; header: string }[]>;

/** A child's tools/list is read at most this many pages deep. */
const MAX_PAGES = 20;

export class ParamHeaders {
  readonly #byBridge = new WeakMap<Bridge, Promise<Marks>>();

  /** The child's tools changed: read its list again on the next call. */
  forget(bridges: readonly Bridge[]): void {
    for (const b of bridges) this.#byBridge.delete(b);
  }

  /** Checks a 2026 tools/call's Mcp-Param-* headers against its arguments. */
  async check(
    bridge: Bridge,
    req: JsonRpcRequest,
    headers: IncomingHttpHeaders,
  ): Promise<EnvelopeProblem | undefined> {
    const name = req.params?.['name'];
    if (typeof name !== 'string') return undefined;
    let marks = this.#byBridge.get(bridge);
    if (!marks) {
      marks = readMarks(bridge);
      this.#byBridge.set(bridge, marks);
    }
    const wanted = (await marks).get(name) ?? [];
    const args = (req.params?.['arguments'] ?? {}) as Record<string, unknown>;
    for (const { arg, header } of wanted) {
      const raw = headers[`mcp-param-${header.toLowerCase()}`];
      const value = args[arg];
      const problem = compare(header, Array.isArray(raw) ? raw.join(',') : raw, value);
      if (problem) return problem;
    }
    return undefined;
  }
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

async function readMarks(bridge: Bridge): Promise<Marks> {
  const marks: Marks = new Map();
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
    for (const t of tools as { name?: unknown; inputSchema?: { properties?: Record<string, unknown> } }[]) {
      if (typeof t?.name !== 'string') continue;
      const props = t.inputSchema?.properties ?? {};
      const list: { arg: string; header: string }[] = [];
      for (const [arg, schema] of Object.entries(props)) {
        const header = (schema as Record<string, unknown> | null)?.['x-mcp-header'];
        if (typeof header === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(header)) list.push({ arg, header });
      }
      if (list.length) marks.set(t.name, list);
    }
    const next = answer.result['nextCursor'];
    if (typeof next !== 'string' || next === '') break;
    cursor = next;
  }
  return marks;
}
