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
});
