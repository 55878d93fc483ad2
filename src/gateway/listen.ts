// 2026 `subscriptions/listen`: one SSE stream per request carrying the list changes and resource
// updates the client asked for and the child can announce.
import type { ServerResponse } from 'node:http';
import type { Bridge } from '../bridge/bridge.ts';
import type { JsonRpcRequest } from '../bridge/jsonrpc.ts';
import type { ConnectionPolicy } from '../policy/policy.ts';
import { newSecret } from '../store/secrets.ts';
import { META } from './envelope.ts';
import type { Principal } from './gate.ts';
import type { Routing } from './routing.ts';
import { type SseOptions, SseStream } from './sse.ts';
import type { Listener } from './types.ts';

export function listen(
  routing: Routing,
  sse: SseOptions,
  r: JsonRpcRequest,
  res: ServerResponse,
  p: Principal,
  bridge: Bridge,
  headers: Record<string, string>,
  policy: ConnectionPolicy,
): void {
  const n = (r.params?.['notifications'] ?? {}) as Record<string, unknown>;
  const caps = (bridge.initializeResult?.['capabilities'] ?? {}) as Record<
    string,
    { listChanged?: boolean; subscribe?: boolean }
  >;
  const uris =
    Array.isArray(n['resourceSubscriptions']) && caps['resources']?.subscribe
      ? (n['resourceSubscriptions'] as unknown[])
          .filter((u): u is string => typeof u === 'string' && policy.allowsResource(u))
          .slice(0, 1024)
      : [];
  const wants = {
    tools: n['toolsListChanged'] === true && caps['tools']?.listChanged === true,
    prompts: n['promptsListChanged'] === true && caps['prompts']?.listChanged === true,
    resources: n['resourcesListChanged'] === true && caps['resources']?.listChanged === true,
    uris: new Set(uris),
  };
  const stream = new SseStream(res, sse, headers);
  const l: Listener = {
    userId: p.userId,
    grantId: p.grantId,
    tokenHash: p.tokenHash,
    id: r.id,
    stream,
    wants,
  };
  const who = `l:${newSecret()}`;
  routing.addListener(l);
  stream.endAt(p.expiresAt);
  stream.onClose(() => {
    routing.removeListener(l);
    routing.dropSubscriptions(p.userId, who);
  });
  for (const uri of uris) {
    void routing.subscription(
      { jsonrpc: '2.0', id: `sub-${uri}`, method: 'resources/subscribe', params: { uri } },
      who,
      bridge,
      p.userId,
      p.grantId,
    );
  }
  stream.send({
    jsonrpc: '2.0',
    method: 'notifications/subscriptions/acknowledged',
    params: {
      notifications: {
        ...(wants.tools ? { toolsListChanged: true } : {}),
        ...(wants.prompts ? { promptsListChanged: true } : {}),
        ...(wants.resources ? { resourcesListChanged: true } : {}),
        ...(uris.length ? { resourceSubscriptions: uris } : {}),
      },
      _meta: { [`${META}subscriptionId`]: r.id },
    },
  });
  if (!wants.tools && !wants.prompts && !wants.resources && uris.length === 0) {
    stream.send({
      jsonrpc: '2.0',
      id: r.id,
      result: { resultType: 'complete', _meta: { [`${META}subscriptionId`]: r.id } },
    });
    stream.end();
  }
}
