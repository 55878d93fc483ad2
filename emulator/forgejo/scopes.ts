// Forgejo's API token scopes for OAuth grants (services/auth grantAdditionalScopes and
// models/auth AccessTokenScope): OIDC words and unknown words are dropped, what is left decides,
// and nothing left means full access. write:X implies read:X.

export const SCOPE_CATEGORIES = [
  'activitypub',
  'admin',
  'misc',
  'notification',
  'organization',
  'package',
  'issue',
  'repository',
  'user',
] as const;

export type ScopeCategory = (typeof SCOPE_CATEGORIES)[number];
export type ScopeLevel = 'read' | 'write';

const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'groups']);
const KNOWN = new Set<string>(['all', ...SCOPE_CATEGORIES.flatMap((c) => [`read:${c}`, `write:${c}`])]);

export type TokenScope = { words: Set<string>; publicOnly: boolean };

/** The API scope an OAuth grant's scope string gives its access tokens. */
export function tokenScopeOfGrant(grantScope: string): TokenScope {
  const kept = grantScope
    .split(' ')
    .filter((w) => !OIDC_SCOPES.has(w))
    .filter((w) => KNOWN.has(w) || w === 'public-only');
  if (kept.length === 0) return { words: new Set(['all']), publicOnly: false };
  return { words: new Set(kept), publicOnly: kept.includes('public-only') };
}

export function hasScope(scope: TokenScope, level: ScopeLevel, category: ScopeCategory): boolean {
  if (scope.words.has('all') || scope.words.has(`write:${category}`)) return true;
  return level === 'read' && scope.words.has(`read:${category}`);
}
