#!/usr/bin/env node
// The lean load generator, run as its own process so its CPU is not the target's: pre-built JSON-RPC
// requests over keep-alive sockets (or raw stdio lines for the floor). Reads one job as JSON on stdin,
// writes one result as JSON on stdout.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { text } from 'node:stream/consumers';
import type { LeanJob, LeanResult } from './lean-job.ts';
import { concurrencyRun, resultOk, runPlan, sequential } from './load.ts';
import {
  closeSession,
  keepAliveAgent,
  type McpHttpSession,
  openSession,
  rpcResult,
  send,
  toolCallBody,
} from './mcp-http.ts';

const OPEN_PARALLEL = 8;

async function mcpHttp(
  job: Extract<LeanJob, { mode: 'mcp' }>,
  target: { url: string; headers: Record<string, string>; pid: number },
): Promise<LeanResult> {
  const maxC = Math.max(1, ...job.plan.concurrencies);
  const agent = keepAliveAgent(maxC);
  const url = new URL(target.url);
  const session = await openSession(agent, url, target.headers);
  const body = toolCallBody(job.tool, job.toolArgs);
  let next = 1;
  try {
    const run = await runPlan(
      async () => {
        const id = next++;
        const reply = await send(agent, url, 'POST', session.headers, body(id));
        const result = rpcResult(reply, id);
        if (!resultOk(result, job.expectText))
          throw new Error(`unexpected result ${JSON.stringify(result).slice(0, 200)}`);
      },
      target.pid,
      job.plan,
      'lean',
    );
    return { mode: 'mcp', run };
  } finally {
    await closeSession(agent, url, session);
    agent.destroy();
  }
}

/** The floor without the SDK: JSON lines on the server's stdin, responses matched by id. */
async function mcpStdio(
  job: Extract<LeanJob, { mode: 'mcp' }>,
  target: { command: string; args: string[]; env: Record<string, string> },
): Promise<LeanResult> {
  const child = spawn(target.command, target.args, {
    env: { ...process.env, ...target.env },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const pending = new Map<number, { resolve: (m: unknown) => void; reject: (e: Error) => void }>();
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    let msg: { id?: unknown; result?: unknown; error?: { code?: number; message?: string } };
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`JSON-RPC error ${msg.error.code}: ${msg.error.message}`));
    else p.resolve(msg.result);
  });
  child.once('exit', () => {
    for (const p of pending.values()) p.reject(new Error('server exited'));
    pending.clear();
  });
  let next = 0;
  const rpc = (method: string, params: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  const body = toolCallBody(job.tool, job.toolArgs);
  try {
    await rpc('initialize', {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'forgejo-mcp-broker-bench-lean', version: '1' },
    });
    child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    const run = await runPlan(
      async () => {
        const id = next++;
        const result = await new Promise<unknown>((resolve, reject) => {
          pending.set(id, { resolve, reject });
          child.stdin!.write(`${body(id)}\n`);
        });
        if (!resultOk(result, job.expectText))
          throw new Error(`unexpected result ${JSON.stringify(result).slice(0, 200)}`);
      },
      child.pid!,
      job.plan,
      'lean',
    );
    return { mode: 'mcp', run };
  } finally {
    child.kill('SIGTERM');
  }
}

async function rate(job: Extract<LeanJob, { mode: 'rate' }>): Promise<LeanResult> {
  const agent = keepAliveAgent(job.concurrency);
  const url = new URL(job.url);
  let call: (worker: number) => Promise<void>;
  let hasWork = () => true;
  /** One token-endpoint request with these form fields; the reply is checked. */
  const tokenRequest = async (fields: Record<string, string>) => {
    const r = await send(
      agent,
      url,
      'POST',
      { 'content-type': 'application/x-www-form-urlencoded' },
      new URLSearchParams(fields).toString(),
    );
    return tokenReply(r.status, r.body);
  };
  if (job.kind === 'get') {
    call = async () => {
      const r = await send(agent, url, 'GET', {});
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    };
  } else if (job.kind === 'refresh') {
    // Each worker follows its own rotation chain: every refresh token is used exactly once.
    const chains = [...job.refreshTokens];
    if (chains.length < job.concurrency) throw new Error('one refresh token per worker needed');
    call = async (w) => {
      const parsed = await tokenRequest({
        ...job.form,
        grant_type: 'refresh_token',
        refresh_token: chains[w]!,
      });
      chains[w] = parsed.refresh_token;
    };
  } else {
    let index = 0;
    const codes = job.codes;
    hasWork = () => index < codes.length;
    call = async () => {
      const item = codes[index++];
      if (!item) return;
      await tokenRequest({
        ...job.form,
        grant_type: 'authorization_code',
        code: item.code,
        code_verifier: item.verifier,
      });
    };
  }
  try {
    const run = await concurrencyRun(call, job.pid, job.concurrency, job.durationMs, hasWork);
    return { mode: 'rate', run };
  } finally {
    agent.destroy();
  }
}

function tokenReply(status: number, body: string): { access_token: string; refresh_token: string } {
  if (status !== 200) throw new Error(`HTTP ${status}: ${body.slice(0, 200)}`);
  const parsed = JSON.parse(body) as { access_token?: unknown; refresh_token?: unknown };
  if (typeof parsed.access_token !== 'string' || typeof parsed.refresh_token !== 'string')
    throw new Error('token response without access_token and refresh_token');
  return { access_token: parsed.access_token, refresh_token: parsed.refresh_token };
}

/** Opens one session per header set, one after another, timing each initialize. */
async function initialize(job: Extract<LeanJob, { mode: 'initialize' }>): Promise<LeanResult> {
  const agent = keepAliveAgent(1);
  const url = new URL(job.url);
  const samples: number[] = [];
  const sessionIds: string[] = [];
  let errors = 0;
  let firstError: string | undefined;
  try {
    for (const headers of job.headers) {
      try {
        const s = await openSession(agent, url, headers);
        samples.push(s.initializeMs);
        if (job.keep) {
          if (s.sessionId) sessionIds.push(s.sessionId);
        } else await closeSession(agent, url, s);
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }
    return { mode: 'initialize', samples, sessionIds, errors, ...(firstError ? { firstError } : {}) };
  } finally {
    agent.destroy();
  }
}

/** Every user keeps one call in flight on their own session for the duration. */
async function scale(job: Extract<LeanJob, { mode: 'scale' }>): Promise<LeanResult> {
  const agent = keepAliveAgent(job.users.length);
  const url = new URL(job.url);
  // Set-up, not measured: a few sessions at a time, so cold spawns do not pile up past any timeout.
  const sessions: McpHttpSession[] = new Array(job.users.length);
  let opened = 0;
  await Promise.all(
    Array.from({ length: Math.min(OPEN_PARALLEL, job.users.length) }, async () => {
      while (opened < job.users.length) {
        const i = opened++;
        sessions[i] = await openSession(agent, url, job.users[i]!);
      }
    }),
  );
  const body = toolCallBody(job.tool, job.toolArgs);
  let next = 1;
  try {
    // One sequential round first so every user's child is up before the window.
    const warm = await sequential(async () => {
      for (const s of sessions) {
        const id = next++;
        const result = rpcResult(await send(agent, url, 'POST', s.headers, body(id)), id);
        if (!resultOk(result, job.expectText)) throw new Error('unexpected result');
      }
    }, 1);
    if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.firstError}`);
    const run = await concurrencyRun(
      async (w) => {
        const id = next++;
        const result = rpcResult(await send(agent, url, 'POST', sessions[w]!.headers, body(id)), id);
        if (!resultOk(result, job.expectText))
          throw new Error(`unexpected result ${JSON.stringify(result).slice(0, 200)}`);
      },
      job.pid,
      sessions.length,
      job.durationMs,
    );
    return { mode: 'rate', run };
  } finally {
    await Promise.all(sessions.map((s) => closeSession(agent, url, s)));
    agent.destroy();
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(await text(process.stdin)) as LeanJob;
  let result: LeanResult;
  if (job.mode === 'mcp') {
    result = job.target.kind === 'http' ? await mcpHttp(job, job.target) : await mcpStdio(job, job.target);
  } else if (job.mode === 'rate') result = await rate(job);
  else if (job.mode === 'initialize') result = await initialize(job);
  else result = await scale(job);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`lean driver: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
