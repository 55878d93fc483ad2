// A one-minute version of `make soak` (scripts/soak.ts): the real broker process under 20
// concurrent sessions of 5 users, then back to its idle baseline of fds, children and zombies.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';

const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'soak.ts');

type Summary = {
  calls: number;
  errors: number;
  brokerErrorLines: number;
  sessions: number;
  fds: { before: number; peak: number; after: number };
  children: { before: number; peak: number; after: number };
  zombies: { after: number };
  reaps: number;
  tokenRefreshes: number;
  leaks: string[];
};

it('60 s soak: no error, and fds, children and zombies back to baseline after idle reaping', async (t) => {
  const proc = spawn(process.execPath, [SCRIPT], {
    env: { ...process.env, SOAK_SECONDS: '60' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  const line = out.split('\n').find((l) => l.startsWith('SOAK_RESULT '));
  assert.ok(line, `no summary from the soak script (exit ${code}):\n${out.slice(-4000)}`);
  const s = JSON.parse(line.slice('SOAK_RESULT '.length)) as Summary;
  t.diagnostic(
    out
      .split('\n')
      .filter((l) => l.startsWith('soak:'))
      .join(' | '),
  );
  assert.equal(code, 0, out.slice(-4000));
  assert.equal(s.errors, 0);
  assert.equal(s.brokerErrorLines, 0);
  assert.equal(s.sessions, 20);
  assert.ok(s.calls > 1000, `only ${s.calls} calls`);
  // Every user had a child at once (more while rotations overlap), and the pausing user's child was
  // reaped and restarted meanwhile.
  assert.ok(s.children.peak >= 5 && s.children.peak <= 10, `peak ${s.children.peak} children`);
  assert.ok(s.reaps >= 5 + 2, `${s.reaps} idle reaps`);
  // 60 s Forgejo tokens: every busy user's child is replaced once during the minute.
  assert.ok(s.tokenRefreshes >= 4, `${s.tokenRefreshes} token refreshes`);
  assert.ok(s.fds.peak > s.fds.before, 'the run opened connections and pipes');
  assert.ok(s.fds.after <= s.fds.before, `fds ${s.fds.before} → ${s.fds.after}`);
  assert.equal(s.children.after, 0);
  assert.equal(s.zombies.after, 0);
  assert.deepEqual(s.leaks, []);
});
