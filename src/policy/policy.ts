// What a connection may see and call: the operator's policy (BROKER_TOOLS, BROKER_TOOLS_DENY)
// narrowed by the grant's mode chosen on the consent page. Applied to the child's list results
// (filtered, tools annotated) and to every request that names a tool, prompt or resource; a hidden
// one is refused with the very error forgejo-mcp (mcp-go) gives for one that does not exist, so a
// client cannot tell "hidden" from "absent".
import { type CatalogueEntry, classify, TOOL_CLASSES, type ToolClass } from './catalogue.ts';

/** The grant's mode: `read` sees read tools only; `write` sees all the operator allows. */
export type GrantMode = 'read' | 'write';
export const GRANT_MODES: readonly GrantMode[] = ['read', 'write'];

export type PolicyRules = {
  /** Classes and tool names or globs that are offered (`*` any run of characters, `?` one). */
  allow: readonly string[];
  /** Classes, names or globs taken away again; a pattern with `://` matches resource URIs. */
  deny: readonly string[];
};

type Matcher = { classes: Set<ToolClass>; globs: RegExp[] };

function globRe(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\/]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

function matcher(words: readonly string[]): Matcher {
  const classes = new Set<ToolClass>();
  const globs: RegExp[] = [];
  for (const w of words) {
    if ((TOOL_CLASSES as readonly string[]).includes(w)) classes.add(w as ToolClass);
    else globs.push(globRe(w));
  }
  return { classes, globs };
}

function matches(m: Matcher, name: string, cls: ToolClass): boolean {
  return m.classes.has(cls) || m.globs.some((g) => g.test(name));
}

export type JsonRpcErrorBody = { code: number; message: string };

/** mcp-go's answers for names it does not have (server.go handleToolCall / GetPrompt / ReadResource). */
export const notFound = {
  tool: (name: string): JsonRpcErrorBody => ({
    code: -32602,
    message: `tool '${name}' not found: tool not found`,
  }),
  prompt: (name: string): JsonRpcErrorBody => ({
    code: -32602,
    message: `prompt '${name}' not found: prompt not found`,
  }),
  resource: (uri: string): JsonRpcErrorBody => ({
    code: -32602,
    message: `handler not found for resource URI '${uri}': resource not found`,
  }),
};

/** The operator's policy; `forMode` gives what one connection gets. */
export class Policy {
  readonly #allow: Matcher;
  readonly #deny: Matcher;
  readonly #views = new Map<GrantMode, ConnectionPolicy>();

  constructor(rules: PolicyRules) {
    this.#allow = matcher(rules.allow);
    this.#deny = matcher(rules.deny);
  }

  /** Whether the operator allows this tool (ignoring any grant's mode). */
  allowsTool(name: string, entry: CatalogueEntry = classify(name)): boolean {
    return matches(this.#allow, name, entry.class) && !matches(this.#deny, name, entry.class);
  }

  /** Prompts and resources only read: they are offered when reads are, unless a pattern denies them. */
  allowsReadItem(name: string): boolean {
    return matches(this.#allow, name, 'read') && !matches(this.#deny, name, 'read');
  }

  /** Whether "read and write" is a choice worth offering: some tool that changes things is allowed. */
  offersWrite(known: Iterable<string>): boolean {
    for (const name of known) {
      const e = classify(name);
      if (e.class !== 'read' && this.allowsTool(name, e)) return true;
    }
    // A tool the catalogue does not know could still be allowed by an explicit name or glob.
    return this.#allow.classes.has('write') || this.#allow.classes.has('destructive');
  }

  forMode(mode: GrantMode): ConnectionPolicy {
    let v = this.#views.get(mode);
    if (!v) {
      v = new ConnectionPolicy(this, mode);
      this.#views.set(mode, v);
    }
    return v;
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The policy one connection (one grant) lives under. */
export class ConnectionPolicy {
  readonly #policy: Policy;
  readonly mode: GrantMode;

  constructor(policy: Policy, mode: GrantMode) {
    this.#policy = policy;
    this.mode = mode;
  }

  allowsTool(name: string): boolean {
    const e = classify(name);
    return (this.mode === 'write' || e.class === 'read') && this.#policy.allowsTool(name, e);
  }

  allowsPrompt(name: string): boolean {
    return this.#policy.allowsReadItem(name);
  }

  allowsResource(uri: string): boolean {
    return this.#policy.allowsReadItem(uri);
  }

  /** Why this connection may not call the tool, for the operator (the client only sees "not found"). */
  reason(name: string): string {
    return this.#policy.allowsTool(name) ? 'read-only connection' : 'operator policy';
  }

  /** The error to answer instead of forwarding this request, if it names something hidden. */
  refusal(method: string, params: Obj | undefined): JsonRpcErrorBody | undefined {
    const name = params?.['name'];
    const uri = params?.['uri'];
    switch (method) {
      case 'tools/call':
        return typeof name === 'string' && !this.allowsTool(name) ? notFound.tool(name) : undefined;
      case 'prompts/get':
        return typeof name === 'string' && !this.allowsPrompt(name) ? notFound.prompt(name) : undefined;
      case 'resources/read':
      case 'resources/subscribe':
        return typeof uri === 'string' && !this.allowsResource(uri) ? notFound.resource(uri) : undefined;
      case 'completion/complete': {
        const ref = isObj(params?.['ref']) ? params['ref'] : {};
        if (
          ref['type'] === 'ref/prompt' &&
          typeof ref['name'] === 'string' &&
          !this.allowsPrompt(ref['name'])
        )
          return notFound.prompt(ref['name']);
        if (
          ref['type'] === 'ref/resource' &&
          typeof ref['uri'] === 'string' &&
          !this.allowsResource(ref['uri'])
        )
          return notFound.resource(ref['uri']);
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /** A list result as this connection may see it; other results unchanged. */
  filterResult(method: string, result: Obj): Obj {
    const list = (key: string, keep: (item: Obj) => Obj | undefined): Obj => {
      const items = result[key];
      if (!Array.isArray(items)) return result;
      const kept: Obj[] = [];
      for (const item of items) {
        const k = isObj(item) ? keep(item) : undefined;
        if (k) kept.push(k);
      }
      return { ...result, [key]: kept };
    };
    switch (method) {
      case 'tools/list':
        return list('tools', (t) =>
          typeof t['name'] === 'string' && this.allowsTool(t['name']) ? annotate(t) : undefined,
        );
      case 'prompts/list':
        return list('prompts', (p) =>
          typeof p['name'] === 'string' && this.allowsPrompt(p['name']) ? p : undefined,
        );
      case 'resources/list':
        return list('resources', (r) =>
          typeof r['uri'] === 'string' && this.allowsResource(r['uri']) ? r : undefined,
        );
      case 'resources/templates/list':
        return list('resourceTemplates', (r) =>
          typeof r['uriTemplate'] === 'string' && this.allowsResource(r['uriTemplate']) ? r : undefined,
        );
      default:
        return result;
    }
  }
}

/** The catalogue's annotations under the ones the tool brings itself (those always win). */
export function annotate(tool: Obj): Obj {
  const { annotations } = classify(String(tool['name']));
  const own = isObj(tool['annotations']) ? tool['annotations'] : {};
  const out: Obj = { ...tool, annotations: { ...annotations, ...own } };
  if (out['title'] === undefined) out['title'] = (out['annotations'] as Obj)['title'];
  return out;
}

type Sink<M> = { send(msg: M, final: boolean): boolean };

/** The sink a forwarded request's answer goes through: list results arrive filtered. */
export function filteringSink<M extends object>(
  policy: ConnectionPolicy,
  method: string,
  sink: Sink<M>,
): Sink<M> {
  if (!method.endsWith('/list')) return sink;
  return {
    send: (msg, final) =>
      sink.send(
        final && 'result' in msg && isObj(msg.result)
          ? ({ ...msg, result: policy.filterResult(method, msg.result) } as M)
          : msg,
        final,
      ),
  };
}
