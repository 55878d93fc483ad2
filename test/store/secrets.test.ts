import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashSecret, keyCheck, newSecret, open, safeEqual, seal } from '../../src/store/secrets.ts';

const key = Buffer.alloc(32, 9);

describe('secrets', () => {
  it('newSecret makes distinct high-entropy values with a prefix', () => {
    const a = newSecret('fmb_at_');
    const b = newSecret('fmb_at_');
    assert.notEqual(a, b);
    assert.match(a, /^fmb_at_[A-Za-z0-9_-]{43}$/);
  });

  it('hashSecret is SHA-256 hex and never the input', () => {
    const h = hashSecret('abc');
    assert.equal(h, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('safeEqual compares exactly', () => {
    assert.equal(safeEqual('same', 'same'), true);
    assert.equal(safeEqual('same', 'Same'), false);
    assert.equal(safeEqual('same', 'same!'), false);
    assert.equal(safeEqual('', ''), true);
  });

  it('seal/open round-trips and hides the plaintext', () => {
    const sealed = seal(key, 'forgejo-token-123', 'user:1');
    assert.ok(!sealed.includes('forgejo-token-123'));
    assert.notEqual(seal(key, 'forgejo-token-123', 'user:1'), sealed, 'a fresh nonce every time');
    assert.equal(open(key, sealed, 'user:1'), 'forgejo-token-123');
  });

  it('open fails for another context, another key or a tampered value', () => {
    const sealed = seal(key, 'tok', 'user:1');
    assert.throws(() => open(key, sealed, 'user:2'));
    assert.throws(() => open(Buffer.alloc(32, 8), sealed, 'user:1'));
    const parts = sealed.split('.');
    parts[2] = Buffer.from('xxx').toString('base64url');
    assert.throws(() => open(key, parts.join('.'), 'user:1'));
    assert.throws(() => open(key, 'garbage', 'user:1'), /malformed/);
  });

  it('keyCheck differs per key and reveals nothing of it', () => {
    assert.notEqual(keyCheck(key), keyCheck(Buffer.alloc(32, 8)));
    assert.ok(!keyCheck(key).includes(key.toString('hex').slice(0, 8)));
  });
});
