import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, percentile, ratio, spread, summarize } from '../../bench/stats.ts';

test('percentile is nearest-rank over unsorted samples', () => {
  const samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile(samples, 50), 5);
  assert.equal(percentile(samples, 95), 10);
  assert.equal(percentile(samples, 10), 1);
  assert.equal(percentile(samples, 11), 2);
  assert.equal(percentile(samples, 0), 1);
  assert.equal(percentile(samples, 100), 10);
  assert.ok(Number.isNaN(percentile([], 50)));
  // the input is not reordered
  assert.deepEqual(samples, [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
});

test('p99 of 1,000 samples is the 990th smallest, not the largest', () => {
  const samples = Array.from({ length: 1000 }, (_, i) => 1000 - i);
  const s = summarize(samples);
  assert.equal(s.n, 1000);
  assert.equal(s.p50, 500);
  assert.equal(s.p95, 950);
  assert.equal(s.p99, 990);
  assert.equal(s.max, 1000);
});

test('median takes the middle value or the mean of the two middle ones, ignoring NaN', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7, Number.NaN]), 7);
  assert.ok(Number.isNaN(median([])));
});

test('ratio and spread refuse to invent numbers', () => {
  assert.equal(ratio(3, 2), 1.5);
  assert.ok(Number.isNaN(ratio(1, 0)));
  assert.ok(Number.isNaN(ratio(Number.NaN, 2)));
  assert.equal(spread([90, 100, 110]), 0.2);
  assert.equal(spread([100]), 0);
});
