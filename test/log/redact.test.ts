import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CENSOR, redactSecrets, scrubText } from '../../src/log/redact.ts';
import { captureLogger } from '../support/log-capture.ts';

const S = 'S3CRET-9c1e';

describe('redactSecrets', () => {
  it('censors secret keys at the top and nested in objects and arrays, any case', () => {
    const input = {
      token: S,
      msgCount: 3,
      headers: { Authorization: `Bearer ${S}`, 'content-type': 'application/json', 'Set-Cookie': [S] },
      calls: [{ body: { refresh_token: S, grant_type: 'refresh_token' } }],
      env: { FORGEJO_ACCESS_TOKEN: S, PATH: '/usr/bin' },
      registration: { registration_access_token: S, client_id: 'c1' },
    };
    const out = redactSecrets(input);
    assert.deepEqual(out, {
      token: CENSOR,
      msgCount: 3,
      headers: { Authorization: CENSOR, 'content-type': 'application/json', 'Set-Cookie': CENSOR },
      calls: [{ body: { refresh_token: CENSOR, grant_type: 'refresh_token' } }],
      env: { FORGEJO_ACCESS_TOKEN: CENSOR, PATH: '/usr/bin' },
      registration: { registration_access_token: CENSOR, client_id: 'c1' },
    });
  });

  it('never changes its input and returns it as is when nothing is secret', () => {
    const clean = { method: 'POST', route: '/mcp', status: 200, ms: 1.2, nested: { a: [1, 2] } };
    assert.equal(redactSecrets(clean), clean);
    const dirty = { a: { b: { password: S } }, c: { d: 1 } };
    const out = redactSecrets(dirty);
    assert.equal(dirty.a.b.password, S);
    assert.equal(out.a.b.password, CENSOR);
    assert.equal(out.c, dirty.c, 'untouched branches are shared, not copied');
  });

  it('serializes errors and censors their fields', () => {
    const e = Object.assign(new Error('exchange failed'), { code: S, status: 400 });
    const out = redactSecrets({ err: e }) as unknown as { err: Record<string, unknown> };
    assert.equal(out.err['code'], CENSOR);
    assert.equal(out.err['status'], 400);
    assert.equal(out.err['message'], 'exchange failed');
    assert.equal(e.code, S);
  });

  it('stops at a fixed depth, so cyclic input terminates', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a['self'] = a;
    assert.doesNotThrow(() => redactSecrets(a));
    let deep: Record<string, unknown> = { secret: S };
    for (let i = 0; i < 4; i++) deep = { next: deep };
    assert.ok(!JSON.stringify(redactSecrets(deep)).includes(S), 'five levels down is still censored');
  });

  it('leaves class instances other than errors alone', () => {
    const when = new Date(0);
    const buf = Buffer.from('x');
    const out = redactSecrets({ when, buf });
    assert.equal(out.when, when);
    assert.equal(out.buf, buf);
  });
});

describe('the logger', () => {
  it('censors secrets in logged objects, errors and child bindings', () => {
    const logs = captureLogger();
    const child = logs.log.child({ user: 'alice', token: S });
    child.info({ request: { headers: { cookie: S } } }, 'one');
    child.error(Object.assign(new Error('bad'), { code: S }), 'two');
    logs.log.warn({ nested: { deeper: { client_secret: S } } }, 'three');
    const text = logs.text();
    assert.ok(!text.includes(S), text);
    const [one, two, three] = logs.lines();
    assert.equal(one?.['token'], CENSOR);
    assert.equal(one?.['user'], 'alice');
    const err = two?.['err'] as Record<string, unknown>;
    assert.equal(err['code'], CENSOR);
    assert.equal(err['message'], 'bad');
    assert.equal(err['type'], 'Error');
    assert.equal(three?.['msg'], 'three');
  });
});

describe('scrubText', () => {
  it('censors the given secrets, a cut-off start of one, and whatever looks like a token', () => {
    const secret = 'a1b2c3d4e5f6a7b8c9d0';
    const cases: Array<[string, string]> = [
      [`connect with ${secret} failed`, `connect with ${CENSOR} failed`],
      [`line cut at ${secret.slice(0, 9)}`, `line cut at ${CENSOR}`],
      ['jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-_def ok', `jwt ${CENSOR} ok`],
      ['auth: Bearer abc.def-ghi_jkl', `auth: Bearer ${CENSOR}`],
      ['header token 0123456789abcdef', `header token ${CENSOR}`],
      ['gto_0123456789abcdefghij and ghp_ABCDEFGHIJKLMNOP', `${CENSOR} and ${CENSOR}`],
      ['no grant for mcpat_Q2x-9aZ_bb7LmN0pq and mcprt_AAAAAAAAAAAA', `no grant for ${CENSOR} and ${CENSOR}`],
      [`sha ${'f'.repeat(40)} here`, `sha ${CENSOR} here`],
      [
        'url ?access_token=xyz123&x=1 password: hunter22',
        `url ?access_token=${CENSOR}&x=1 password: ${CENSOR}`,
      ],
      ['listening on 127.0.0.1:8080, 3 tools', 'listening on 127.0.0.1:8080, 3 tools'],
    ];
    for (const [input, want] of cases) assert.equal(scrubText(input, [secret]), want, input);
  });
});
