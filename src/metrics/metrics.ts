// Prometheus metrics of one broker process. Like the logger, one registry per process that every
// part may count into; no label ever names a user or a client (cardinality and privacy), and tool
// names are counted only when the child announced them (a client cannot invent label values).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'fmb_' });

const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export const metrics = {
  httpRequests: new Counter({
    name: 'fmb_http_requests_total',
    help: 'HTTP requests answered, by route template, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  }),
  httpDuration: new Histogram({
    name: 'fmb_http_request_duration_seconds',
    help: 'Time from request to the end of its response (streams: until they close)',
    labelNames: ['route'] as const,
    buckets: seconds,
    registers: [registry],
  }),
  mcpCalls: new Counter({
    name: 'fmb_mcp_calls_total',
    help: 'MCP requests relayed to a child, by method and outcome (ok, error, tool_error, cancelled)',
    labelNames: ['method', 'outcome'] as const,
    registers: [registry],
  }),
  mcpDuration: new Histogram({
    name: 'fmb_mcp_call_duration_seconds',
    help: 'Time from a relayed MCP request to its final answer',
    labelNames: ['method'] as const,
    buckets: seconds,
    registers: [registry],
  }),
  toolCalls: new Counter({
    name: 'fmb_tool_calls_total',
    help: 'tools/call by tool and outcome (tools the child never listed count as "unlisted")',
    labelNames: ['tool', 'outcome'] as const,
    registers: [registry],
  }),
  childrenStarted: new Counter({
    name: 'fmb_children_started_total',
    help: 'forgejo-mcp processes started',
    registers: [registry],
  }),
  childrenExited: new Counter({
    name: 'fmb_children_exited_total',
    help: 'forgejo-mcp processes that exited, by cause (exit code 0, error code, signal)',
    labelNames: ['cause'] as const,
    registers: [registry],
  }),
  refreshes: new Counter({
    name: 'fmb_forgejo_refreshes_total',
    help: 'Refreshes of users’ Forgejo tokens, by outcome and Forgejo’s error code',
    labelNames: ['outcome', 'error'] as const,
    registers: [registry],
  }),
  registrations: new Counter({
    name: 'fmb_registrations_total',
    help: 'Client registrations (RFC 7591), by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  rateLimited: new Counter({
    name: 'fmb_rate_limited_total',
    help: 'Requests refused by a rate limit, by bucket',
    labelNames: ['bucket'] as const,
    registers: [registry],
  }),
  tokens: new Counter({
    name: 'fmb_tokens_issued_total',
    help: 'Broker tokens issued, by grant type',
    labelNames: ['grant_type'] as const,
    registers: [registry],
  }),
};

/** Tool names the children have listed: only these become label values. */
const knownTools = new Set<string>();
const MAX_TOOLS = 1000;

export function learnTools(names: Iterable<string>): void {
  for (const n of names) if (knownTools.size < MAX_TOOLS && /^[\w.-]{1,128}$/.test(n)) knownTools.add(n);
}

export function toolLabel(name: unknown): string {
  return typeof name === 'string' && knownTools.has(name) ? name : 'unlisted';
}

/** Gauges read from the running parts when scraped. */
export type Observed = {
  childrenLive(): number;
  sessionsOpen(): number;
  streamsOpen(): number;
  pendingAuthorizations(): Promise<number>;
};

export function observe(parts: Observed): void {
  for (const name of [
    'fmb_children_live',
    'fmb_sessions_open',
    'fmb_streams_open',
    'fmb_pending_authorizations',
  ])
    registry.removeSingleMetric(name);
  new Gauge({
    name: 'fmb_children_live',
    help: 'forgejo-mcp processes running now',
    registers: [registry],
    collect() {
      this.set(parts.childrenLive());
    },
  });
  new Gauge({
    name: 'fmb_sessions_open',
    help: 'MCP sessions (2025 revisions) open now',
    registers: [registry],
    collect() {
      this.set(parts.sessionsOpen());
    },
  });
  new Gauge({
    name: 'fmb_streams_open',
    help: 'Server-sent event streams open now (GET streams and 2026 listen streams)',
    registers: [registry],
    collect() {
      this.set(parts.streamsOpen());
    },
  });
  new Gauge({
    name: 'fmb_pending_authorizations',
    help: 'Sign-ins started and not yet finished or expired',
    registers: [registry],
    async collect() {
      this.set(await parts.pendingAuthorizations());
    },
  });
}
