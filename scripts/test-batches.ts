// `make test`'s test runs: every batch runs even when an earlier one fails, then one summary of all
// of them. A batch is one `node --test` run with its own options; add one with one line in BATCHES.
// The last line is always `N passed, N failed` (what CI reads); the exit status is 1 if any batch
// failed. A batch that cannot run here says why and counts as not run, never as passed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, globSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { resolveCommand } from '../src/config/command.ts';

export type Batch = {
  name: string;
  /** Test files (globs relative to the repository root). */
  files: string[];
  /** Files the globs match that belong to another batch. */
  exclude?: string[];
  /** Extra `node --test` options. */
  options?: string[];
  /** Why the batch cannot run on this machine, or undefined when it can. */
  notRunBecause?: () => string | undefined;
  /** Whether a batch that did not run fails `make test` (CI sets REQUIRE_REAL_SUITE=1). */
  required?: () => boolean;
};

// Line coverage of the authorization server (src/oauth) is measured on its own tests and gated at
// 80%. Those run apart because with coverage on, Node hands every child process NODE_V8_COVERAGE,
// which the tests of exact child environments (supervisor, pool) must not see.
const OAUTH_COVERAGE = [
  '--experimental-test-coverage',
  '--test-coverage-include=src/oauth/**',
  '--test-coverage-lines=80',
];

/** The tests that need the real forgejo-mcp binary (FORGEJO_MCP, or forgejo-mcp on PATH). */
const REAL_FORGEJO_MCP = ['test/policy/catalogue-real.test.ts'];

function noRealForgejoMcp(): string | undefined {
  try {
    resolveCommand(process.env['FORGEJO_MCP'] || 'forgejo-mcp');
    return undefined;
  } catch {
    return 'no forgejo-mcp binary: set FORGEJO_MCP=/path/to/forgejo-mcp or put it on PATH';
  }
}

/**
 * The real-server batch needs Gitea built by scripts/real-deps.sh (built here, or reused from its
 * cache: its progress lines show) and Debian's Chromium. The real forgejo-mcp cannot be had, so its
 * children are the stand-in either way.
 */
function realSuiteNotRunBecause(): string | undefined {
  const build = spawnSync('bash', [`${import.meta.dirname}/real-deps.sh`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (build.status === 3) return 'no suitable Go to build Gitea (see the real-deps ERROR line above)';
  if (build.status === 4)
    return 'the Go module proxy did not give Gitea (see the real-deps ERROR line above)';
  if (build.status !== 0) return `building Gitea failed (real-deps exit ${build.status ?? build.signal})`;
  if (!existsSync('/usr/bin/chromium'))
    return '/usr/bin/chromium is missing (scripts/ci-packages.sh installs it)';
  return undefined;
}

export const BATCHES: Batch[] = [
  {
    name: 'everything but oauth and real',
    files: ['test/*/*.test.ts'],
    exclude: ['test/oauth/*.test.ts', 'test/real/*.test.ts', ...REAL_FORGEJO_MCP],
  },
  {
    name: 'oauth (src/oauth line coverage >= 80%)',
    files: ['test/oauth/*.test.ts'],
    options: OAUTH_COVERAGE,
  },
  {
    // One file at a time: each starts its own Gitea, and the machine has few cores.
    name: 'real Gitea v1.27.3 (test/real; forgejo-mcp: the stand-in, the real one cannot be had)',
    files: ['test/real/*.test.ts'],
    options: ['--test-concurrency=1', '--test-timeout=600000'],
    notRunBecause: realSuiteNotRunBecause,
    required: () => process.env['REQUIRE_REAL_SUITE'] === '1',
  },
  {
    name: 'real forgejo-mcp (tool catalogue vs its tools/list)',
    files: REAL_FORGEJO_MCP,
    notRunBecause: noRealForgejoMcp,
  },
];

export const NODE_TEST_OPTIONS = [
  '--test',
  '--test-concurrency=2',
  '--test-timeout=300000',
  '--test-reporter=spec',
];

export type Outcome =
  | {
      name: string;
      ran: true;
      passed: number;
      failed: number;
      skipped: number;
      exitCode: number;
      note?: string;
    }
  | { name: string; ran: false; why: string; required?: boolean };

/** The files of a batch, narrowed to `only` (the TEST_FILES globs) when given. */
export function batchFiles(batch: Batch, cwd: string, only?: string[]): string[] {
  const expand = (globs: string[]) => new Set(globs.flatMap((g) => globSync(g, { cwd })));
  const excluded = expand(batch.exclude ?? []);
  const chosen = only ? expand(only) : undefined;
  return [...expand(batch.files)].filter((f) => !excluded.has(f) && (!chosen || chosen.has(f))).sort();
}

/** Node's spec reporter ends a run with `ℹ pass N`, `ℹ fail N`, …: the last of each is the run's total. */
export function runTotals(
  output: string,
): { pass: number; fail: number; cancelled: number; skipped: number } | undefined {
  const last = (word: string) => {
    const all = [...output.matchAll(new RegExp(`^ℹ ${word} (\\d+)$`, 'gm'))];
    const m = all.at(-1);
    return m ? Number(m[1]) : undefined;
  };
  const pass = last('pass');
  const fail = last('fail');
  if (pass === undefined || fail === undefined) return undefined;
  return {
    pass,
    fail,
    cancelled: last('cancelled') ?? 0,
    skipped: (last('skipped') ?? 0) + (last('todo') ?? 0),
  };
}

function runNodeTest(
  args: string[],
  cwd: string,
  echo: (s: string) => void,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    // A batch run from inside a test must not take itself for a child of that test's runner.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (d: Buffer) => {
      const s = d.toString();
      out += s;
      echo(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (e) => resolve({ code: 1, out: `${out}\n${e.message}` }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out }));
  });
}

export async function runBatch(
  batch: Batch,
  opts: { cwd: string; only?: string[]; echo: (s: string) => void },
): Promise<Outcome> {
  const why = batch.notRunBecause?.();
  if (why) return { name: batch.name, ran: false, why, required: batch.required?.() ?? false };
  const files = batchFiles(batch, opts.cwd, opts.only);
  if (files.length === 0) {
    return {
      name: batch.name,
      ran: false,
      why: opts.only ? 'TEST_FILES selects none of its files' : 'no test files',
    };
  }
  opts.echo(`\n── batch: ${batch.name} (${files.length} files) ──\n`);
  const { code, out } = await runNodeTest(
    [...NODE_TEST_OPTIONS, ...(batch.options ?? []), ...files],
    opts.cwd,
    opts.echo,
  );
  const totals = runTotals(out);
  if (!totals) {
    // The run died before its summary (a crash, a signal): count it as one failure, never as passed.
    return {
      name: batch.name,
      ran: true,
      passed: 0,
      failed: 1,
      skipped: 0,
      exitCode: code || 1,
      note: 'no summary from node --test',
    };
  }
  const failed = totals.fail + totals.cancelled;
  const outcome: Outcome = {
    name: batch.name,
    ran: true,
    passed: totals.pass,
    failed,
    skipped: totals.skipped,
    exitCode: code,
  };
  // Every test passed but node --test failed the run (the coverage gate, say): one failure more.
  const gate = out.match(/^.*does not meet threshold.*$/m)?.[0].replace(/^[^\w]*/, '');
  if (code !== 0 && failed === 0)
    return { ...outcome, failed: 1, note: gate ?? `node --test exited with status ${code} (see above)` };
  return outcome;
}

export function summary(outcomes: Outcome[]): { text: string; ok: boolean } {
  const lines = ['', '── make test: summary of all batches ──'];
  let passed = 0;
  let failed = 0;
  for (const o of outcomes) {
    if (!o.ran) {
      lines.push(
        `- ${o.name}: NOT RUN (${o.why})${o.required ? ' — required here, so make test fails' : ''}`,
      );
      continue;
    }
    passed += o.passed;
    failed += o.failed;
    const mark = o.failed > 0 || o.exitCode !== 0 ? '✖' : '✔';
    const skipped = o.skipped ? `, ${o.skipped} skipped` : '';
    lines.push(
      `${mark} ${o.name}: ${o.passed} passed, ${o.failed} failed${skipped}${o.note ? ` (${o.note})` : ''}`,
    );
  }
  const notRun = outcomes.filter((o) => !o.ran).length;
  if (notRun)
    lines.push(
      `${notRun} of ${outcomes.length} batches NOT RUN: their tests are counted neither as passed nor as failed`,
    );
  lines.push(`${passed} passed, ${failed} failed`);
  const ok = outcomes.every((o) => (o.ran ? o.failed === 0 && o.exitCode === 0 : !o.required));
  return { text: `${lines.join('\n')}\n`, ok };
}

export async function runAll(
  batches: Batch[],
  opts: { cwd: string; only?: string[]; echo: (s: string) => void },
): Promise<{ outcomes: Outcome[]; text: string; ok: boolean }> {
  const outcomes: Outcome[] = [];
  for (const b of batches) outcomes.push(await runBatch(b, opts));
  return { outcomes, ...summary(outcomes) };
}

if (import.meta.main) {
  const started = performance.now();
  const only = process.env['TEST_FILES']?.trim() ? process.env['TEST_FILES'].trim().split(/\s+/) : undefined;
  const cwd = `${import.meta.dirname}/..`;
  const { text, ok } = await runAll(BATCHES, { cwd, only, echo: (s) => process.stdout.write(s) });
  process.stdout.write(`(all batches: ${Math.round((performance.now() - started) / 1000)} s)\n${text}`);
  process.exitCode = ok ? 0 : 1;
}
