// Where the gateway's call reports go: Prometheus counters and the audit trail's tool_call events.
import type { Audit } from '../audit/audit.ts';
import type { CallObserver } from '../gateway/call-observer.ts';
import { learnTools, metrics, toolLabel } from '../metrics/metrics.ts';
import type { OAuthStore } from '../store/store.ts';

/** Client names change rarely and a tool call must not wait for a lookup: remembered, bounded. */
const NAME_CACHE = 1000;

export function callTelemetry(store: OAuthStore, audit: Audit): CallObserver {
  const names = new Map<string, string>();
  const nameOf = async (clientId: string): Promise<string> => {
    const known = names.get(clientId);
    if (known !== undefined) return known;
    const name = (await store.getClient(clientId))?.name ?? '';
    if (names.size >= NAME_CACHE) names.delete(names.keys().next().value as string);
    names.set(clientId, name);
    return name;
  };
  return (call) => {
    if (call.listed) learnTools(call.listed);
    metrics.mcpCalls.inc({ method: call.method, outcome: call.outcome });
    metrics.mcpDuration.observe({ method: call.method }, call.ms / 1000);
    if (call.method !== 'tools/call') return;
    const tool = toolLabel(call.tool);
    metrics.toolCalls.inc({ tool, outcome: call.outcome });
    const args = audit.describeArguments(call.arguments);
    const record = (clientName: string) =>
      audit.record({
        event: 'tool_call',
        login: call.login,
        userId: call.userId,
        clientId: call.clientId,
        clientName,
        // The name as sent, when it is one the child listed; anything else is not echoed.
        tool:
          tool === 'unlisted' && typeof call.tool === 'string' ? `unlisted:${call.tool.slice(0, 64)}` : tool,
        outcome: call.outcome,
        ms: Math.round(call.ms),
        ...(args ? { arguments: args } : {}),
      });
    // Known names (nearly every call) are recorded at once, without a promise per call.
    const known = names.get(call.clientId);
    if (known !== undefined) record(known);
    else void nameOf(call.clientId).then(record, () => {});
  };
}
