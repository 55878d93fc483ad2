// The official MCP conformance suite (@modelcontextprotocol/conformance) against the whole broker:
// the Forgejo emulator, the real OAuth server, and the project's 2025-revision stdio fixture server
// (test/fixtures/conformance-server.ts) as the user's child. The server scenarios of both
// requirement sets run through a proxy that only adds a real access token (Host and Origin reach
// the broker as the suite sent them); the authorization-server scenarios run against the broker's
// OAuth server with headless Chromium as the user's browser. A failed or warned check in any
// scenario the sets run (scored or not, the tasks extension's included) fails the test unless
// expected-failures.yml lists it with its reason.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { parse } from 'yaml';
import { bearerProxy } from '../support/bearer-proxy.ts';
import { launchChromium } from '../support/chromium.ts';
import { CONFORMANCE_SERVER } from '../support/gateway-stack.ts';
import { brokerToken } from '../support/mcp-oauth-client.ts';
import { freePort, registerClient } from '../support/oauth-harness.ts';
import { type Stack, startStack } from '../support/oauth-stack.ts';

const SUITE = join(import.meta.dirname, '..', '..', 'node_modules', '@modelcontextprotocol', 'conformance');
const CLI = join(SUITE, 'dist', 'index.js');
const EXPECTED = join(import.meta.dirname, 'expected-failures.yml');

type Check = { id: string; status: string; errorMessage?: string };
type Run = { code: number | null; stdout: string };

function runSuite(args: string[], onLine: (line: string) => void = () => {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let partial = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      partial += c.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    });
    child.stderr.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

/** Every check of every scenario the run saved, by scenario name. */
function checksOf(dir: string, prefix: string): Map<string, Check[]> {
  const out = new Map<string, Check[]>();
  for (const d of readdirSync(dir)) {
    const m = new RegExp(`^${prefix}-(.+)-\\d{4}-\\d{2}-\\d{2}T`).exec(d);
    if (!m) continue;
    out.set(m[1] as string, JSON.parse(readFileSync(join(dir, d, 'checks.json'), 'utf8')) as Check[]);
  }
  return out;
}

/**
 * Every server scenario the requirement set runs: what it scores, and what it runs unscored
 * (pending, added after the release, and the tasks extension, which the broker implements).
 */
function heldScenarios(set: string): Set<string> {
  const req = parse(readFileSync(join(SUITE, 'requirements', `${set}.yaml`), 'utf8')) as {
    server: string[];
    not_scored?: { scenario: string; leg: string }[];
  };
  const unscored = (req.not_scored ?? []).filter((n) => n.leg === 'server').map((n) => n.scenario);
  return new Set([...req.server, ...unscored]);
}

function expectedFailures(): Set<string> {
  const y = parse(readFileSync(EXPECTED, 'utf8')) as { server: string[] };
  return new Set(y.server);
}

let stack: Stack;
let out: string;
before(async () => {
  out = mkdtempSync(join(tmpdir(), 'broker-conformance-'));
  stack = await startStack({
    // The suite's slow fixtures take 1-2 s; tasks start after 300 ms so that they become tasks.
    env: {
      BROKER_CHILD_COMMAND: `"${process.execPath}" "${CONFORMANCE_SERVER}"`,
      BROKER_TASK_AFTER: '300ms',
    },
  });
});
after(async () => {
  await stack.closeAll();
  rmSync(out, { recursive: true, force: true });
});

describe('the official MCP conformance suite, server scenarios through the broker', () => {
  let mcpUrl: string;
  let closeProxy: () => void;
  before(async () => {
    const token = await brokerToken(stack.url);
    const proxy = await bearerProxy(Number(new URL(stack.url).port), token);
    mcpUrl = `${proxy.url}/mcp`;
    closeProxy = () => proxy.server.close();
  });
  after(() => closeProxy());

  for (const set of ['2025-11-25', '2026-07-28']) {
    it(`--requirements ${set}: every check passes but the listed expected failures`, async (t) => {
      const dir = join(out, set);
      const run = await runSuite([
        'server',
        '--url',
        mcpUrl,
        '--requirements',
        set,
        '--expected-failures',
        EXPECTED,
        '-o',
        dir,
      ]);
      const checks = checksOf(dir, 'server');
      const held = heldScenarios(set);
      const allowed = expectedFailures();
      let passed = 0;
      let failed = 0;
      const unexpected: string[] = [];
      for (const [scenario, list] of checks) {
        for (const c of list) {
          if (c.status === 'SUCCESS') passed++;
          if (c.status !== 'FAILURE' && c.status !== 'WARNING') continue;
          failed++;
          if (held.has(scenario) && !allowed.has(`${scenario}:${c.id}`))
            unexpected.push(`${scenario}:${c.id} ${c.status}: ${c.errorMessage ?? ''}`);
        }
      }
      const missing = [...held].filter((s) => !checks.has(s));
      t.diagnostic(
        `${set}: ${checks.size} scenarios, ${passed} checks passed, ${failed} failed or warned, each listed in expected-failures.yml`,
      );
      assert.deepEqual(missing, [], 'every scored scenario ran');
      assert.deepEqual(unexpected, [], 'failed or warned checks');
      assert.equal(run.code, 0, run.stdout.slice(-3000));
    });
  }
});

describe('the official MCP conformance suite, authorization-server scenarios', () => {
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(() => browser.close());

  it('the broker’s OAuth server passes them, a real browser doing the user’s part', async (t) => {
    const port = await freePort();
    const client = await registerClient(stack.url, {
      redirect_uris: [`http://127.0.0.1:${port}/callback`],
      token_endpoint_auth_method: 'none',
      client_name: 'conformance',
    });
    let signIn: Promise<void> | undefined;
    let urlNext = false;
    const run = await runSuite(
      [
        'authorization',
        '--url',
        stack.url,
        '--client-id',
        client.client_id,
        '--resource',
        `${stack.url}/mcp`,
        '-p',
        String(port),
        '-o',
        join(out, 'authorization'),
      ],
      (line) => {
        if (line.startsWith('Access the following URL')) urlNext = true;
        else if (urlNext && line.startsWith('http')) {
          urlNext = false;
          signIn = approve(browser, line.trim(), port);
        }
      },
    );
    assert.ok(signIn, `the suite printed no authorization URL:\n${run.stdout.slice(-2000)}`);
    await signIn;
    const checks = checksOf(join(out, 'authorization'), 'authorization-server');
    const failures = [...checks].flatMap(([s, list]) =>
      list.filter((c) => c.status === 'FAILURE').map((c) => `${s}:${c.id}: ${c.errorMessage ?? ''}`),
    );
    const ids = [...checks.values()].flat().map((c) => `${c.id}=${c.status}`);
    t.diagnostic(`authorization: ${ids.join(', ')}`);
    assert.ok(checks.has('authorization-code-grant'), run.stdout.slice(-2000));
    assert.deepEqual(failures, []);
    assert.equal(run.code, 0, run.stdout.slice(-2000));
  });
});

/** The user's part: consent, the Forgejo login, the grant; ends at the suite's callback server. */
async function approve(browser: Browser, url: string, port: number): Promise<void> {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    await Promise.all([page.waitForNavigation(), page.click('#consent-approve')]);
    await page.fill('input[name="user_name"]', 'alice');
    await page.fill('input[name="password"]', 'alice-pw');
    await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
    if (await page.$('#grant-approve'))
      await Promise.all([page.waitForNavigation(), page.click('#grant-approve')]);
    await page.waitForURL((u) => u.port === String(port) && u.pathname === '/callback', { timeout: 10_000 });
  } finally {
    await page.close();
  }
}
