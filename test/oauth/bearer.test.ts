import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createBearerVerifier } from '../../src/oauth/bearer.ts';
import { hashSecret, newSecret } from '../../src/store/secrets.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

describe('verifyBearer', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'broker-bearer-'));
  const store = new SqliteStore({ path: join(tmp, 'b.db'), secretKey: Buffer.alloc(32, 7) });
  const resource = 'https://mcp.example/mcp';
  const verify = createBearerVerifier(store, resource);
  const now = Date.now();

  async function issue(scopes: string[], res = resource, expiresAt = now + 60_000): Promise<string> {
    const grantId = newSecret('g');
    const code = newSecret();
    await store.createGrant(
      { grantId, userId: 7, login: 'u7', clientId: 'c', scopes, resource: res, createdAt: now },
      {
        codeHash: hashSecret(code),
        grantId,
        clientId: 'c',
        redirectUri: 'https://x/cb',
        codeChallenge: 'x',
        resource: res,
        expiresAt,
        usedAt: null,
      },
    );
    const access = newSecret('mcpat_');
    await store.redeemCode(hashSecret(code), now, {
      accessHash: hashSecret(access),
      accessExpiresAt: expiresAt,
      refreshHash: hashSecret(newSecret()),
      refreshExpiresAt: expiresAt,
    });
    return access;
  }

  after(async () => {
    await store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('answers the principal for a good token, with the scheme in any case', async () => {
    const t = await issue(['mcp']);
    const r = await verify(`bearer ${t}`);
    assert.ok(r.ok);
    assert.deepEqual(
      { ...r.principal, grantId: '' },
      {
        userId: 7,
        login: 'u7',
        grantId: '',
        clientId: 'c',
        scopes: ['mcp'],
        resource,
        mode: 'write',
        expiresAt: now + 60_000,
        tokenHash: hashSecret(t),
      },
    );
  });

  it('refuses missing, malformed and unknown tokens', async () => {
    for (const h of [undefined, '', 'Bearer', 'Basic abc', 'Bearer a b', `Bearer ${'x'}\n`]) {
      const r = await verify(h);
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error, 'invalid_token');
    }
    assert.deepEqual(await verify('Bearer mcpat_unknown'), {
      ok: false,
      error: 'invalid_token',
      description: 'the token is unknown or revoked',
    });
  });

  it('refuses a token for another resource (401) and one without the mcp scope (403)', async () => {
    const other = await issue(['mcp'], 'https://elsewhere.example/mcp');
    assert.deepEqual(await verify(`Bearer ${other}`), {
      ok: false,
      error: 'invalid_token',
      description: 'the token is for another resource',
    });
    const noScope = await issue([]);
    const r = await verify(`Bearer ${noScope}`);
    assert.equal(!r.ok && r.error, 'insufficient_scope');
  });

  it('refuses an expired token', async () => {
    const t = await issue(['mcp'], resource, now + 1000);
    assert.equal((await verify(`Bearer ${t}`, now + 2000)).ok, false);
  });

  describe('the in-memory cache', () => {
    /** A verifier over the same store that counts its lookups, and can hold one until released. */
    function counted() {
      let lookups = 0;
      let hold: Promise<void> | undefined;
      const wrapped = new Proxy(store, {
        get(target, key) {
          if (key === 'findAccessToken')
            return async (hash: string) => {
              lookups++;
              const found = await target.findAccessToken(hash);
              if (hold) await hold;
              return found;
            };
          const v = Reflect.get(target, key, target);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
      return {
        verify: createBearerVerifier(wrapped, resource),
        lookups: () => lookups,
        holdNext(): () => void {
          let release!: () => void;
          hold = new Promise((r) => {
            release = r;
          });
          return () => {
            hold = undefined;
            release();
          };
        },
      };
    }

    it('answers a token seen before without the store, and marks its grant used', async () => {
      const c = counted();
      const t = await issue(['mcp']);
      const first = await c.verify(`Bearer ${t}`);
      const second = await c.verify(`Bearer ${t}`);
      assert.ok(first.ok && second.ok);
      assert.equal(c.lookups(), 1);
      assert.deepEqual(second.principal, first.principal);
      assert.ok(Object.isFrozen(second.principal), 'one object answers every request: nobody may change it');
      await store.flushUsage();
      const grant = (await store.listGrants(7)).find((g) => g.grantId === first.principal.grantId);
      assert.ok(grant?.lastUsedAt && grant.lastUsedAt >= now);
    });

    it('never caches a refusal, so unknown tokens cannot fill it', async () => {
      const c = counted();
      await c.verify('Bearer mcpat_unknown_1');
      await c.verify('Bearer mcpat_unknown_1');
      assert.equal(c.lookups(), 2);
    });

    it('forgets a token the moment it, its grant or its user is revoked', async () => {
      const c = counted();
      const single = await issue(['mcp']);
      const ofGrant = await issue(['mcp']);
      const ofUser = await issue(['mcp']);
      for (const t of [single, ofGrant, ofUser]) assert.ok((await c.verify(`Bearer ${t}`)).ok);
      assert.equal(await store.revokeToken(hashSecret(single), 'c'), 'access');
      assert.equal((await c.verify(`Bearer ${single}`)).ok, false);
      const g = await c.verify(`Bearer ${ofGrant}`);
      assert.ok(g.ok);
      await store.revokeGrant(g.principal.grantId);
      assert.equal((await c.verify(`Bearer ${ofGrant}`)).ok, false);
      assert.ok((await c.verify(`Bearer ${ofUser}`)).ok);
      await store.revokeUser(7);
      assert.equal((await c.verify(`Bearer ${ofUser}`)).ok, false);
    });

    it('hears a revocation made by another process through the change log', async () => {
      const c = counted();
      const t = await issue(['mcp']);
      const r = await c.verify(`Bearer ${t}`);
      assert.ok(r.ok);
      const stop = store.watchChanges(20);
      const other = new SqliteStore({ path: join(tmp, 'b.db'), secretKey: Buffer.alloc(32, 7) });
      try {
        await other.revokeGrant(r.principal.grantId);
        const deadline = Date.now() + 5000;
        while ((await c.verify(`Bearer ${t}`)).ok) {
          assert.ok(Date.now() < deadline, 'the revocation never reached the cache');
          await new Promise((res) => setTimeout(res, 20));
        }
      } finally {
        stop();
        await other.close();
      }
    });

    it('does not keep what a revocation removed while the lookup was in flight', async () => {
      const c = counted();
      const t = await issue(['mcp']);
      const release = c.holdNext();
      const pending = c.verify(`Bearer ${t}`);
      await new Promise((res) => setTimeout(res, 20));
      await store.revokeToken(hashSecret(t), 'c');
      release();
      assert.ok((await pending).ok, 'the lookup read the row before the revocation');
      assert.equal((await c.verify(`Bearer ${t}`)).ok, false);
      assert.equal(c.lookups(), 2);
    });

    it('refuses a cached token once it expires', async () => {
      const c = counted();
      const t = await issue(['mcp'], resource, now + 1000);
      assert.ok((await c.verify(`Bearer ${t}`, now)).ok);
      assert.deepEqual(await c.verify(`Bearer ${t}`, now + 1500), {
        ok: false,
        error: 'invalid_token',
        description: 'the token expired',
      });
    });
  });
});
