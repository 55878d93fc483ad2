import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineSplitter } from '../../src/supervisor/line-splitter.ts';

type Seen = { text: string; total: number; truncated: boolean };

function collect(max: number): { splitter: LineSplitter; seen: Seen[] } {
  const seen: Seen[] = [];
  const splitter = new LineSplitter(max, (head, total, truncated) =>
    seen.push({ text: head.toString('utf8'), total, truncated }),
  );
  return { splitter, seen };
}

test('splits on newlines across chunk boundaries, CRLF tolerated, last line flushed at end', () => {
  const { splitter, seen } = collect(100);
  splitter.push(Buffer.from('{"a":1}\n{"b"'));
  splitter.push(Buffer.from(':2}\r\n\nlast'));
  assert.deepEqual(
    seen.map((s) => s.text),
    ['{"a":1}', '{"b":2}', ''],
  );
  splitter.end();
  assert.deepEqual(seen.at(-1), { text: 'last', total: 4, truncated: false });
  splitter.end();
  assert.equal(seen.length, 4, 'end() twice adds nothing');
});

test('a multi-byte character split between chunks decodes whole', () => {
  const { splitter, seen } = collect(100);
  const bytes = Buffer.from('grüße\n');
  for (const b of bytes) splitter.push(Buffer.from([b]));
  assert.deepEqual(seen, [{ text: 'grüße', total: 7, truncated: false }]);
});

test('an over-long line keeps only its head, reports its full size, and framing resumes after it', () => {
  const { splitter, seen } = collect(10);
  splitter.push(Buffer.from('short\n0123456789abc'));
  // Megabytes without a newline: only 10 bytes are ever held.
  for (let i = 0; i < 100; i++) splitter.push(Buffer.alloc(10_000, 0x78));
  splitter.push(Buffer.from('tail\nnext\n'));
  assert.deepEqual(seen, [
    { text: 'short', total: 5, truncated: false },
    { text: '0123456789', total: 13 + 1_000_000 + 4, truncated: true },
    { text: 'next', total: 4, truncated: false },
  ]);
});

test('a line of exactly the bound is whole, one byte more is truncated', () => {
  const { splitter, seen } = collect(4);
  splitter.push(Buffer.from('abcd\nabcde\n'));
  assert.deepEqual(seen, [
    { text: 'abcd', total: 4, truncated: false },
    { text: 'abcd', total: 5, truncated: true },
  ]);
  assert.throws(() => new LineSplitter(0, () => {}), RangeError);
});

test('a kept partial line does not pin the chunk it came from', () => {
  const seen: Buffer[] = [];
  const splitter = new LineSplitter(100, (head) => seen.push(head));
  const chunk = Buffer.alloc(65536, 0x61);
  chunk[65535] = 0x62;
  splitter.push(chunk.subarray(65530));
  chunk.fill(0x7a); // the caller reuses its buffer
  splitter.push(Buffer.from('\n'));
  assert.equal(seen[0]?.toString(), 'aaaaab');
});

test('keeps the last bytes of an over-long line, across chunks, and only for that line', () => {
  const tails: string[] = [];
  const splitter = new LineSplitter(10, (_head, _total, truncated, tail) => {
    if (truncated) tails.push(tail.toString('utf8'));
    else assert.equal(tail.length, 0);
  });
  const body = `{"result":"${'x'.repeat(1000)}","jsonrpc":"2.0","id":42}`;
  for (let i = 0; i < body.length; i += 7) splitter.push(Buffer.from(body.slice(i, i + 7)));
  splitter.push(Buffer.from('\nshort\n'));
  assert.equal(tails.length, 1);
  assert.ok(tails[0]?.endsWith('"jsonrpc":"2.0","id":42}'), tails[0]);
  assert.equal(Buffer.byteLength(tails[0] ?? ''), 256);
});
