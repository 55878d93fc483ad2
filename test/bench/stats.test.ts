import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Histogram,
  median,
  percentile,
  ratio,
  spread,
  summarize,
  summarizeHistogram,
  uncorrectWrkHistogram,
} from '../../bench/stats.ts';

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

/** wrk 4.1's stats_correct, as its C source does it, on a dense array: the test's oracle. */
function wrkCorrect(original: Histogram, expected: number): Histogram {
  const max = Math.max(...original.map(([us]) => us));
  const data = new Array<number>(max + 1).fill(0);
  for (const [us, n] of original) data[us] = n;
  for (let n = expected * 2; n <= max; n++) {
    const count = data[n]!;
    let m = n - expected;
    while (count && m > expected) {
      data[m]! += count;
      m -= expected;
    }
  }
  return data.flatMap((n, us) => (n > 0 ? [[us, n] as [number, number]] : []));
}

test("wrk's coordinated-omission samples are taken out again, exactly", () => {
  // 64 connections over 0.2 s; mostly ~2 ms, a tail of slow responses up to 40 ms.
  const original: Histogram = [];
  let requests = 0;
  for (let us = 1500; us <= 2600; us += 7) {
    original.push([us, 40]);
    requests += 40;
  }
  for (const us of [5000, 9000, 17_003, 25_000, 40_000]) {
    original.push([us, 3]);
    requests += 3;
  }
  const runtimeUs = 200_000;
  const connections = 64;
  const interval = Math.floor(runtimeUs / Math.floor(requests / connections));
  const corrected = wrkCorrect(original, interval);
  const added = corrected.reduce((s, [, n]) => s + n, 0) - requests;
  assert.ok(added > 0, 'the slow tail makes wrk add samples');
  assert.deepEqual(uncorrectWrkHistogram(corrected, runtimeUs, requests, connections), original);
  // The corrected p99 is inflated; the uncorrected one is what was observed.
  assert.ok(summarizeHistogram(corrected).p99 >= summarizeHistogram(original).p99);
});

test('a histogram summary is nearest-rank, in milliseconds', () => {
  const h: Histogram = [
    [100, 50],
    [200, 45],
    [900, 4],
    [5000, 1],
  ];
  assert.deepEqual(summarizeHistogram(h), { n: 100, p50: 0.1, p95: 0.2, p99: 0.9, max: 5 });
  assert.ok(Number.isNaN(summarizeHistogram([]).p50));
});
