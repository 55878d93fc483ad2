import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StderrDrain } from '../../src/supervisor/stderr-drain.ts';
import { captureLog } from './helpers.ts';

function drain(limits: ConstructorParameters<typeof StderrDrain>[0]['limits']) {
  const { log, records } = captureLog();
  let now = 0;
  const d = new StderrDrain({ log, name: 'alice', limits, now: () => now });
  return {
    d,
    records,
    advance(ms: number) {
      now += ms;
    },
    lines: () => records.filter((r) => r.msg === 'child stderr').map((r) => r.line),
  };
}

test('strips ANSI colours and control characters, cuts long lines, skips blank ones', () => {
  const { d, records, lines } = drain({ maxLineBytes: 40 });
  d.push(Buffer.from('\u001b[1;31mERROR\u001b[0m failed\n\n   \nprogress 10%\rprogress 20%\u0007\n'));
  d.push(Buffer.from(`${'y'.repeat(50)}\n`)); // the bound is on raw bytes: memory, not looks
  d.end();
  assert.deepEqual(lines(), [
    'ERROR failed',
    'progress 10%progress 20%',
    `${'y'.repeat(40)} [cut: line was 50 bytes]`,
  ]);
  assert.ok(records.every((r) => r.child === 'alice'));
  assert.equal(d.lines, 3);
});

test('a token bucket limits a flood to the burst plus the rate, with one summary per gap', () => {
  const { d, records, advance, lines } = drain({ burst: 5, linesPerSecond: 2 });
  for (let i = 0; i < 100; i++) d.push(Buffer.from(`a${i}\n`));
  assert.deepEqual(lines(), ['a0', 'a1', 'a2', 'a3', 'a4']);
  advance(1000); // two tokens back
  for (let i = 0; i < 3; i++) d.push(Buffer.from(`b${i}\n`));
  const summaries = records.filter((r) => r.msg === 'child stderr lines suppressed');
  assert.deepEqual(
    summaries.map((r) => [r.level, r.suppressed]),
    [['warn', 95]],
  );
  assert.deepEqual(lines().slice(5), ['b0', 'b1']);
  d.end(); // b2 was suppressed: the summary comes at the end of the stream
  assert.deepEqual(
    records.filter((r) => r.msg === 'child stderr lines suppressed').map((r) => r.suppressed),
    [95, 1],
  );
  // The summary sits between the lines it stands for and the next logged one.
  const order = records.map((r) => (r.msg === 'child stderr' ? r.line : `(${r.suppressed})`));
  assert.deepEqual(order, ['a0', 'a1', 'a2', 'a3', 'a4', '(95)', 'b0', 'b1', '(1)']);
});

test('the tail ring keeps the last lines, suppressed or not', () => {
  const { d } = drain({ burst: 1, linesPerSecond: 0.001, tailLines: 3 });
  assert.deepEqual(d.tail(), []);
  d.push(Buffer.from('one\ntwo\n'));
  assert.deepEqual(d.tail(), ['one', 'two']);
  d.push(Buffer.from('three\nfour\nfive\n'));
  assert.deepEqual(d.tail(), ['three', 'four', 'five']);
  d.push(Buffer.from('six'));
  d.end();
  assert.deepEqual(d.tail(), ['four', 'five', 'six']);
});
