// The replica proof (scripts/ha-proof.ts) against the real Gitea instead of the emulator: sign-in
// through Gitea's own login and grant pages, Gitea's single-use refresh tokens, and the stand-in
// children calling Gitea's API with them. Gitea's tokens live 10 s here, as in broker-gitea.test.ts:
// with Gitea and six Node stand-ins on two shared cores, a stand-in replacing its predecessor can
// take longer to start than a 5 s token leaves it (the real forgejo-mcp starts in milliseconds);
// `node scripts/ha-proof.ts --gitea` runs it with 5 s tokens. Two replicas on PostgreSQL behind Debian's Caddy;
// the replica with more children is killed with SIGKILL mid-run and started again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { haProof, proofFailures } from '../../scripts/ha-proof.ts';

describe('two replicas behind Caddy, signing in with the real Gitea', () => {
  it('a replica killed mid-run: every call answered as its caller, at most one retry each, Gitea refreshes never refused', {
    timeout: 400_000,
  }, async (t) => {
    const f = await haProof({
      seconds: 25,
      users: 3,
      tokenTtl: 10,
      forge: 'gitea',
      log: (l) => t.diagnostic(l),
    });
    const { perClient, ...figures } = f;
    t.diagnostic(JSON.stringify(figures));
    assert.deepEqual(proofFailures(f), []);
    assert.equal(f.errors, 0);
    assert.equal(f.wrongUser, 0);
    assert.ok(perClient.every((c) => c.retried <= 1));
    assert.ok(f.forgejoRefreshes >= 3, `${f.forgejoRefreshes} Gitea refreshes`);
    assert.equal(f.forgejoRefused, 0);
  });
});
