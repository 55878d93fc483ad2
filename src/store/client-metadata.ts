// How both backends store a client's metadata JSON: the id, name and redirect URIs have columns of
// their own, so the JSON does not repeat them, and reading puts them back.
const OWN_COLUMNS = ['client_id', 'client_name', 'redirect_uris'];

export function packMetadata(metadata: Record<string, unknown>): string {
  return JSON.stringify(
    Object.fromEntries(Object.entries(metadata).filter(([k]) => !OWN_COLUMNS.includes(k))),
  );
}

export function unpackMetadata(
  json: string,
  clientId: string,
  name: string,
  redirectUris: string[],
): Record<string, unknown> {
  return {
    ...(JSON.parse(json) as Record<string, unknown>),
    client_id: clientId,
    client_name: name,
    redirect_uris: redirectUris,
  };
}
