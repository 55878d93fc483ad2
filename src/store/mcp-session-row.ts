// A stored 2025 MCP session as both backends read it back (the same columns on each).
import type { McpSessionRecord } from './store.ts';

export function mcpSessionFromRow(r: Record<string, unknown>): McpSessionRecord {
  return {
    idHash: r['id_hash'] as string,
    grantId: r['grant_id'] as string,
    userId: Number(r['user_id']),
    login: r['login'] as string,
    tokenHash: (r['token_hash'] as string | null) ?? null,
    protocolVersion: r['protocol_version'] as string,
    clientInfo: r['client_info'] as string,
    clientCapabilities: r['client_capabilities'] as string,
    createdAt: Number(r['created_at']),
    lastSeenAt: Number(r['last_seen_at']),
  };
}
