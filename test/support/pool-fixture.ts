// A Pool under test without HTTP in front: fault-server children (test/fixtures/fault-server.ts),
// numbered Forgejo tokens, and tool calls straight through the user's bridge.
import { join } from 'node:path';
import type { Sink } from '../../src/bridge/bridge.ts';
import type { JsonRpcResponse } from '../../src/bridge/jsonrpc.ts';
import type { Pool, PoolOptions, PoolUser, TokenSource } from '../../src/pool/pool.ts';

const FAULT_SERVER = join(import.meta.dirname, '..', 'fixtures', 'fault-server.ts');

/**
 * Hands out `tok-<user>-<n>` (n counts over all users), the n-th living `lifeMs(n)`. A user gets the
 * same token again while it has more than `minValidityMs` left, as the broker's credential store does.
 */
export function numberedTokens(
  lifeMs: number | ((n: number) => number) = 3_600_000,
): TokenSource & { issued: number } {
  const current = new Map<number, { token: string; expiresAt: number }>();
  const src = {
    issued: 0,
    async accessToken(userId: number, { minValidityMs }: { minValidityMs: number }) {
      const t = current.get(userId);
      if (t && t.expiresAt - Date.now() > minValidityMs) return t;
      const n = ++src.issued;
      const fresh = {
        token: `tok-${userId}-${n}`,
        expiresAt: Date.now() + (typeof lifeMs === 'number' ? lifeMs : lifeMs(n)),
      };
      current.set(userId, fresh);
      return fresh;
    },
  };
  return src;
}

/** Options of a pool of fault-server children with generous timeouts; the test brings its spawner and log. */
export function faultPoolOptions(
  own: Pick<PoolOptions, 'spawner' | 'log'> & Partial<PoolOptions>,
): PoolOptions {
  return {
    command: process.execPath,
    args: [FAULT_SERVER],
    forgejoUrl: 'http://127.0.0.1:9',
    idleMs: 60_000,
    maxChildren: 10,
    rotateMarginMs: 1000,
    stopGraceMs: 1000,
    bridge: {
      initTimeoutMs: 10_000,
      callTimeoutMs: 10_000,
      maxLineBytes: 1 << 20,
      clientInfo: { name: 'pool-test', version: '0' },
      protocolVersion: '2025-06-18',
    },
    tokens: numberedTokens(),
    events: { notification: () => {}, orphanRequest: () => undefined },
    ...own,
  };
}

/** Calls tool `name` on `user`'s child; the text of the first content item, or a JSON-RPC error thrown. */
export async function callTool(
  p: Pool,
  user: PoolUser,
  name: string,
  args: Record<string, unknown> = {},
): Promise<string> {
  const bridge = await p.acquire(user);
  const res = await new Promise<JsonRpcResponse>((resolve) => {
    const sink: Sink = {
      send: (m, final) => {
        if (final) resolve(m as JsonRpcResponse);
        return true;
      },
    };
    bridge.call(
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } },
      sink,
      's',
    );
  });
  if ('error' in res) throw new Error(res.error.message);
  return (res.result['content'] as { text: string }[])[0]?.text ?? '';
}
