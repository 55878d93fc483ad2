// The keys a 2026 client sees the child's questions under, and the answers it sends ahead.
import { createHash } from 'node:crypto';
import type { JsonRpcRequest } from '../bridge/jsonrpc.ts';
import { capabilityFor } from './envelope.ts';

/**
 * The key a question goes under: named after what it asks and derived from its content, so the
 * same question gets the same key every time. A client that lost its requestState and sends the
 * answers again with a fresh request has them used instead of being asked again.
 */
export function questionKey(msg: JsonRpcRequest, taken: Map<string, unknown>): string {
  const kind = capabilityFor(msg.method) ?? 'input';
  const digest = createHash('sha256')
    .update(JSON.stringify([msg.method, msg.params ?? {}]))
    .digest('base64url')
    .slice(0, 12);
  let key = `${kind}_${digest}`;
  for (let n = 2; taken.has(key); n++) key = `${kind}_${digest}_${n}`;
  return key;
}

/** `inputResponses` of a fresh request, kept only where each answer is an object. */
export function answersAhead(v: unknown, max: number): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return out;
  for (const [k, a] of Object.entries(v).slice(0, max)) {
    if (typeof a === 'object' && a !== null && !Array.isArray(a)) out.set(k, a as Record<string, unknown>);
  }
  return out;
}
