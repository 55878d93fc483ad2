// Discovery documents (RFC 9728 protected-resource metadata, RFC 8414 authorization-server
// metadata). `issuer` is BROKER_PUBLIC_URL byte for byte: clients compare it with `iss`.
export const SCOPES = ['mcp'] as const;

export function resourceUrl(publicUrl: string): string {
  return `${publicUrl}/mcp`;
}

/** RFC 7592 client configuration endpoint of a registered client. */
export function registrationClientUri(publicUrl: string, clientId: string): string {
  return `${publicUrl}/oauth/register/${encodeURIComponent(clientId)}`;
}

export function protectedResourceMetadata(publicUrl: string): Record<string, unknown> {
  return {
    resource: resourceUrl(publicUrl),
    authorization_servers: [publicUrl],
    scopes_supported: [...SCOPES],
    bearer_methods_supported: ['header'],
    resource_name: 'Forgejo MCP',
  };
}

export function authorizationServerMetadata(publicUrl: string): Record<string, unknown> {
  return {
    issuer: publicUrl,
    authorization_endpoint: `${publicUrl}/oauth/authorize`,
    token_endpoint: `${publicUrl}/oauth/token`,
    registration_endpoint: `${publicUrl}/oauth/register`,
    revocation_endpoint: `${publicUrl}/oauth/revoke`,
    scopes_supported: [...SCOPES],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'none'],
    revocation_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'none'],
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: true,
  };
}
