// A stored 2025 MCP session as both backends write and read it (the same columns on each).
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

/** The INSERT's columns, in the order of `mcpSessionValues`. */
export const MCP_SESSION_COLUMNS =
  'id_hash, grant_id, user_id, login, token_hash, protocol_version, client_info, client_capabilities, created_at, last_seen_at';

export function mcpSessionValues(m: McpSessionRecord): (string | number | null)[] {
  return [
    m.idHash,
    m.grantId,
    m.userId,
    m.login,
    m.tokenHash,
    m.protocolVersion,
    m.clientInfo,
    m.clientCapabilities,
    m.createdAt,
    m.lastSeenAt,
  ];
}
