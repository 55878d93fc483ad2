import type { Bridge, Sink } from '../bridge/bridge.ts';
import type { JsonRpcRequest, JsonRpcResponse } from '../bridge/jsonrpc.ts';

/**
 * One request to the child on the broker's own account (or `origin`'s, of client app `party`);
 * resolves with its answer.
 */
export function callOnce(
  bridge: Bridge,
  r: JsonRpcRequest,
  origin = 'broker',
  party = origin,
): Promise<JsonRpcResponse> {
  return new Promise((resolve) => {
    const sink: Sink = {
      send: (m, final) => {
        if (final) resolve(m as JsonRpcResponse);
        return true;
      },
    };
    bridge.call(r, sink, origin, party);
  });
}
