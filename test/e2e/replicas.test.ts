// Issue 20, point 4, the short run: scripts/ha-proof.ts with 25 s of load (the full run is
// `node scripts/ha-proof.ts --full`, docs/operations.md). PostgreSQL, two broker replicas and
// Debian's Caddy with deploy/compose-ha/Caddyfile on loopback; SDK v1 and v2 clients of three users
// calling through Caddy with 5 s Forgejo tokens; one replica killed with SIGKILL and started again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { haProof, proofFailures } from '../../scripts/ha-proof.ts';

describe('two replicas behind Caddy on one PostgreSQL database', () => {
  it('a replica killed mid-run: every call answered as its caller, at most one retry each, no child left, revocations across, no spent refresh token', {
    timeout: 240_000,
  }, async (t) => {
    const f = await haProof({ seconds: 25, users: 3, tokenTtl: 5, log: (l) => t.diagnostic(l) });
    const { perClient, ...figures } = f;
    t.diagnostic(JSON.stringify(figures));
    for (const c of perClient)
      t.diagnostic(`${c.label}: ${c.calls} calls, ${c.retried} retried, failover ${c.failoverMs ?? '-'} ms`);
    assert.deepEqual(proofFailures(f), []);
    // The same, spelled out: what the issue asks.
    assert.equal(f.errors, 0);
    assert.equal(f.wrongUser, 0);
    assert.ok(perClient.every((c) => c.retried <= 1 && c.calls > 0));
    assert.ok(f.clientsFailedOver >= 1, 'some client was on the killed replica');
    assert.ok(f.killedChildren >= 1);
    assert.equal(f.killedChildrenLeft, 0);
    assert.equal(f.staleChildRows, 0);
    assert.equal(f.deadChildRows, 0);
    assert.ok(f.forgejoRefreshes >= 3, `${f.forgejoRefreshes} Forgejo refreshes`);
    assert.equal(f.forgejoRefused, 0);
    assert.equal(f.alreadyUsedInLogs, 0);
    assert.ok(f.revocationMs < 1000, `${f.revocationMs} ms`);
  });
});
