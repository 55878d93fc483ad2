// What the operator's side (metrics, the audit trail) learns of each call relayed to a child: the
// gateway reports the final answer's outcome and duration, and knows nothing of what is done with it.
import type { Sink } from '../bridge/bridge.ts';
import type { JsonRpcRequest } from '../bridge/jsonrpc.ts';

export type Caller = { userId: number; login: string; grantId: string; clientId: string };

export type CallDone = Caller & {
  method: string;
  /** tools/call: the tool's name as the client sent it (checked against the child's list before use). */
  tool?: unknown;
  arguments?: unknown;
  /** error: a JSON-RPC error; tool_error: a result with isError. */
  outcome: 'ok' | 'error' | 'tool_error';
  ms: number;
  /** tools/list: the names the child listed. */
  listed?: string[];
};

export type CallObserver = (call: CallDone) => void;

/** The same sink, reporting the final answer to `observer` (none: the sink itself, at no cost). */
export function observedSink(r: JsonRpcRequest, caller: Caller, sink: Sink, observer?: CallObserver): Sink {
  if (!observer) return sink;
  const started = performance.now();
  return {
    send(msg, final) {
      // The answer leaves first: what the observer records (metrics, the audit line) is not on the
      // caller's critical path.
      const sent = sink.send(msg, final);
      if (final) {
        const outcome =
          'error' in msg ? 'error' : 'result' in msg && msg.result['isError'] === true ? 'tool_error' : 'ok';
        observer({
          ...caller,
          method: r.method,
          ...(r.method === 'tools/call'
            ? { tool: r.params?.['name'], arguments: r.params?.['arguments'] }
            : {}),
          outcome,
          ms: performance.now() - started,
          ...(r.method === 'tools/list' && 'result' in msg && Array.isArray(msg.result['tools'])
            ? { listed: (msg.result['tools'] as { name?: unknown }[]).map((t) => String(t.name)) }
            : {}),
        });
      }
      return sent;
    },
  };
}
