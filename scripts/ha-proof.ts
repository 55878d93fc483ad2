// The replica proof (issue 20, point 4) on one machine: PostgreSQL, two broker replicas and Debian's
// Caddy with deploy/compose-ha/Caddyfile, all on loopback (test/support/replicas.ts). SDK v1
// (2025-11-25 sessions) and v2 (2026-07-28, stateless) clients of several users call
// get_my_user_info without pause through Caddy while the Forgejo emulator's access tokens live 5 s,
// so every user's credential is refreshed again and again, by whichever replica needs it first.
// Mid-run the replica with more children is killed with SIGKILL (at a moment no Forgejo refresh is
// between the emulator and a replica's database commit: see QUIET_MS) and, later, started again.
// Then:
//   - every call answered, each with its caller's own Forgejo login; a call that failed is sent
//     again once (counted), and none fails twice;
//   - nobody signs in again: each client keeps its bearer token and its session throughout;
//   - the killed replica's children are gone, and its rows in the live-children table too once it
//     is back;
//   - a revocation written through replica A closes a stream held on replica B within a second;
//   - Forgejo never answered a refresh with "token was already used" (nor any other refusal).
//   node scripts/ha-proof.ts            the short run `make test` makes (test/e2e/replicas.test.ts)
//   node scripts/ha-proof.ts --full     120 s of load, 4 users (docs/operations.md)
//   --seconds N --users N --token-ttl S  other sizes (at most 8 users)
//   --gitea                             against the real Gitea (scripts/real-deps.sh builds it)
//   --log-file FILE                     every replica's log lines, for diagnosis
// Prints the figures as JSON; exits 1 when a check fails.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import type { EmulatorRequest, EmulatorUser } from '../emulator/forgejo/emulator.ts';
import { walkForge } from '../test/support/forge-walk.ts';
import { rawInitialize } from '../test/support/mcp-oauth-client.ts';
import { form, pkce, registerClient } from '../test/support/oauth-harness.ts';
import { authorizeUrl, tokenRequest } from '../test/support/oauth-stack.ts';
import { childrenOf, type ReplicaStack, startReplicas } from '../test/support/replicas.ts';
import type { Login } from '../test/support/scripted-oauth.ts';
import { UserAgent } from '../test/support/user-agent.ts';

export type ProofOptions = {
  /** Seconds of load; the revocation check at 20 % of it, the kill at 35 %, the restart at 65 %. */
  seconds: number;
  users: number;
  /** Forgejo access token life in seconds. */
  tokenTtl: number;
  /** FORGEJO_REFRESH_MARGIN of the replicas (default 2s). */
  refreshMargin?: string;
  log?: (line: string) => void;
  /** For diagnosis: every replica's log lines, written here at the end. */
  logFile?: string;
  /** The Forgejo side: the emulator (default) or the real Gitea (scripts/real-deps.sh builds it). */
  forge?: 'emulator' | 'gitea';
};

export type ClientFigures = {
  label: string;
  calls: number;
  retried: number;
  /** Why each call was sent again, and when (ms after the kill; negative: before it). */
  retryReasons: string[];
  errors: string[];
  /** Calls answered with someone else's login (must stay 0). */
  wrongUser: number;
  /** ms from the kill to this client's first answer after a failed call, if one failed. */
  failoverMs?: number;
};

export type ProofFigures = {
  seconds: number;
  users: number;
  clients: number;
  calls: number;
  retried: number;
  errors: number;
  wrongUser: number;
  /** Clients whose calls met the killed replica (one failed call each, then answers again). */
  clientsFailedOver: number;
  failoverMsMax: number | null;
  /** Children the killed replica ran, and how many were still alive 5 s after the kill. */
  killedChildren: number;
  killedChildrenLeft: number;
  /** live_child rows of the killed broker process once it was back. */
  staleChildRows: number;
  /** live_child rows, at the end, whose process is not running. */
  deadChildRows: number;
  /** Forgejo refreshes, and how many Forgejo refused (incl. "token was already used"). */
  forgejoRefreshes: number;
  forgejoRefused: number;
  alreadyUsedInLogs: number;
  /** Each refusal: HTTP status and ms after the kill (negative: before it). */
  forgejoRefusals: Array<{ status: number; msAfterKill: number }>;
  /** Distinct messages of the replicas' warn and error log lines. */
  brokerWarnings: string[];
  /** A revocation through replica A to the end of a stream held on replica B. */
  revocationMs: number;
  perClient: ClientFigures[];
};

const ALPHABET = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
const REDIRECT = 'http://127.0.0.1:41234/cb';
/** How long after a token request was answered its replica has surely committed the result. */
const QUIET_MS = 200;
/** A client waits this long before sending a failed call again, as an SDK retry would. */
const RETRY_AFTER_MS = 300;

type ToolCaller = { callTool(p: { name: string; arguments: Record<string, unknown> }): Promise<unknown> };

function loginOf(result: unknown): string | undefined {
  const r = result as { isError?: boolean; content?: { text?: string }[] };
  if (r.isError) return undefined;
  return /"login":"([^"]+)"/.exec(r.content?.[0]?.text ?? '')?.[1];
}

type SignedIn = { clientId: string; access: string; refresh: string };

/** A fresh public client through the consent page and the forge's own login and grant pages. */
async function signIn(base: string, who: Login): Promise<SignedIn> {
  const c = await registerClient(base, {
    redirect_uris: ['http://127.0.0.1/cb'],
    token_endpoint_auth_method: 'none',
  });
  const { verifier, challenge } = pkce();
  const walk = await walkForge(
    new UserAgent(),
    authorizeUrl(base, { clientId: c.client_id, redirectUri: REDIRECT, challenge }),
    who,
    (u) => u.href.startsWith(`${REDIRECT}?`),
  );
  const code = walk.location.searchParams.get('code');
  if (!code) throw new Error(`no code for ${who.login}: ${walk.location}`);
  const t = await tokenRequest(base, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    client_id: c.client_id,
  });
  if (t.status !== 200) throw new Error(`token for ${who.login}: ${t.status} ${JSON.stringify(t.body)}`);
  return {
    clientId: c.client_id,
    access: t.body['access_token'] as string,
    refresh: t.body['refresh_token'] as string,
  };
}

async function connect(
  base: string,
  sdk: 'v1' | 'v2',
  token: string,
): Promise<ToolCaller & { close(): Promise<void> }> {
  const headers = { authorization: `Bearer ${token}` };
  const mcp = new URL(`${base}/mcp`);
  if (sdk === 'v1') {
    const client = new Client({ name: 'ha-proof-v1', version: '0' });
    await client.connect(new StreamableHTTPClientTransport(mcp, { requestInit: { headers } }));
    return client;
  }
  const client = new ClientV2(
    { name: 'ha-proof-v2', version: '0' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(new TransportV2(mcp, { requestInit: { headers } }));
  return client;
}

/**
 * No Forgejo credential was just written, and none is near the moment a replica refreshes it: the
 * pool replaces a child a third of its token's life before expiry and refreshes the credential
 * then (FORGEJO_REFRESH_MARGIN, 2 s here, is inside that third).
 */
async function credentialsQuiet(sql: pg.Pool): Promise<boolean> {
  const now = Date.now();
  const { rows } = await sql.query<{ expires_at: string; updated_at: string }>(
    'SELECT expires_at, updated_at FROM forgejo_credential',
  );
  return rows.every((r) => {
    const expires = Number(r.expires_at);
    const updated = Number(r.updated_at);
    const refreshAt = expires - (expires - updated) / 3;
    return now - updated > QUIET_MS && refreshAt - now > 300;
  });
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function warnings(logText: string): string[] {
  const msgs = new Set<string>();
  for (const line of logText.split('\n')) {
    if (!line.startsWith('{"level":"warn"') && !line.startsWith('{"level":"error"')) continue;
    try {
      const l = JSON.parse(line) as { msg?: string; err?: { message?: string } };
      msgs.add(`${l.msg}${l.err?.message ? `: ${l.err.message}` : ''}`);
    } catch {
      msgs.add(line.slice(0, 200)); // cut short by the kill
    }
  }
  return [...msgs];
}

/** A revocation through replica `a` ends a 2025 GET stream held on replica `b`: ms it took. */
async function revocationAcross(stack: ReplicaStack, who: Login): Promise<number> {
  const [a, b] = stack.replicas as [ReplicaStack['replicas'][number], ReplicaStack['replicas'][number]];
  const user = await signIn(stack.url, who);
  const init = await rawInitialize(`${b.url}/mcp`, user.access);
  const sessionId = init.headers.get('mcp-session-id');
  await init.text();
  if (!sessionId) throw new Error(`no session from replica B: ${init.status}`);
  const stream = await fetch(`${b.url}/mcp`, {
    headers: {
      authorization: `Bearer ${user.access}`,
      accept: 'text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    },
  });
  if (stream.status !== 200) throw new Error(`no stream on replica B: ${stream.status}`);
  const ended = stream.text().then(
    () => Date.now(),
    () => Date.now(),
  );
  const revokedAt = Date.now();
  const res = await fetch(`${a.url}/oauth/revoke`, form({ token: user.refresh, client_id: user.clientId }));
  if (res.status !== 200) throw new Error(`revocation on replica A answered ${res.status}`);
  return (await ended) - revokedAt;
}

export async function haProof(o: ProofOptions): Promise<ProofFigures> {
  const log = o.log ?? (() => {});
  const logins = ALPHABET.slice(0, o.users);
  const forge = o.forge ?? 'emulator';
  // Gitea's password policy wants more than the emulator's.
  const password = (login: string) => (forge === 'gitea' ? `${login}-Pw-2026!` : `${login}-pw`);
  const users: EmulatorUser[] = [...logins, 'rita'].map((login, i) => ({
    id: 2001 + i,
    login,
    password: password(login),
  }));
  const who = (login: string): Login => ({ login, password: password(login) });
  const stack = await startReplicas({
    users,
    forge,
    accessTokenTtlSeconds: o.tokenTtl,
    env: { FORGEJO_REFRESH_MARGIN: o.refreshMargin ?? '2s' },
  });
  const sql = new pg.Pool({ connectionString: stack.db, max: 1 });
  const closers: Array<() => Promise<void>> = [];
  try {
    log(`stack up: caddy ${stack.url}, replicas ${stack.replicas.map((r) => r.port).join(', ')}`);
    const clients: Array<{ label: string; login: string; caller: ToolCaller }> = [];
    for (const login of logins) {
      for (const sdk of ['v1', 'v2'] as const) {
        const { access } = await signIn(stack.url, who(login));
        const c = await connect(stack.url, sdk, access);
        closers.push(() => c.close());
        clients.push({ label: `${login} ${sdk}`, login, caller: c });
      }
    }
    log(`${clients.length} clients signed in`);
    // The emulator tells each refresh and its answer; with Gitea the replicas' logs do.
    const refreshes = new Set<EmulatorRequest>();
    const noteRefreshes = () => {
      for (const r of stack.emulator?.requests ?? [])
        if (r.method === 'POST' && r.grantType === 'refresh_token') refreshes.add(r);
    };
    noteRefreshes();

    const started = Date.now();
    const end = started + o.seconds * 1000;
    let killedAt = 0;
    let stopped = false;
    const figures: ClientFigures[] = [];
    const load = clients.map(async ({ label, login, caller }) => {
      const f: ClientFigures = { label, calls: 0, retried: 0, retryReasons: [], errors: [], wrongUser: 0 };
      figures.push(f);
      let failedAt: number | undefined;
      while (Date.now() < end && !stopped) {
        let result: unknown;
        try {
          result = await caller.callTool({ name: 'get_my_user_info', arguments: {} });
        } catch (first) {
          f.retried++;
          const when = killedAt ? `${Date.now() - killedAt} ms after the kill` : 'before the kill';
          f.retryReasons.push(`${when}: ${(first as Error).message.slice(0, 200)}`);
          failedAt ??= Date.now();
          await new Promise((r) => setTimeout(r, RETRY_AFTER_MS));
          try {
            result = await caller.callTool({ name: 'get_my_user_info', arguments: {} });
          } catch (second) {
            f.errors.push(`${(first as Error).message} / then ${(second as Error).message}`);
            f.calls++;
            continue;
          }
        }
        f.calls++;
        const who = loginOf(result);
        if (who === undefined) f.errors.push(`not an answer: ${JSON.stringify(result).slice(0, 200)}`);
        else if (who !== login) f.wrongUser++;
        else if (failedAt !== undefined && f.failoverMs === undefined && killedAt > 0)
          f.failoverMs = Date.now() - killedAt;
      }
    });

    const at = (fraction: number) =>
      new Promise((r) => setTimeout(r, Math.max(0, started + o.seconds * 1000 * fraction - Date.now())));
    const chaos = (async () => {
      await at(0.2);
      const revocationMs = await revocationAcross(stack, who('rita'));
      log(`revocation through A closed the stream on B in ${revocationMs} ms`);
      await at(0.35);
      // The replica running more children serves more clients (a child runs where a user's calls
      // go): killing it makes sure the kill meets someone, whatever the hash decided.
      const counts = stack.replicas.map((r) =>
        r.broker ? childrenOf(r.broker.proc.pid as number).length : -1,
      );
      const v = counts.indexOf(Math.max(...counts));
      const victimPid = stack.replicas[v]?.broker?.proc.pid as number;
      const kids = childrenOf(victimPid);
      // Not while a refresh is between Forgejo and a replica's commit: killed there, the replica
      // takes the user's only new refresh token with it (docs/operations.md, "Replicas"), a loss no
      // failover can undo. The emulator says when it is answering a refresh; Gitea cannot, so
      // there the kill waits for a moment no credential is due for one (credentialsQuiet). The
      // emulator runs in this process, so no request is answered between its check and the kill.
      const deadline = Date.now() + 10_000;
      while (forge === 'gitea' && !(await credentialsQuiet(sql))) {
        if (Date.now() > deadline) throw new Error('no moment without a Forgejo refresh due within 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      await waitUntil(() => !stack.emulator?.tokenEndpointBusy(QUIET_MS), 10_000);
      killedAt = Date.now();
      await stack.kill(v);
      log(
        `killed replica ${v} (pid ${victimPid}) with ${kids.length} children; the other ran ${counts[1 - v]}`,
      );
      await new Promise((r) => setTimeout(r, 5000));
      const left = kids.filter(running);
      await at(0.65);
      await stack.restart(v);
      log(`replica ${v} is back`);
      // The restarted replica clears what its crashed predecessor left in the live-children table.
      let staleRows = -1;
      for (let i = 0; i < 50; i++) {
        const { rows } = await sql.query('SELECT count(*)::int AS n FROM live_child WHERE broker_pid = $1', [
          victimPid,
        ]);
        staleRows = rows[0].n as number;
        if (staleRows === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      return { revocationMs, killedChildren: kids.length, left: left.length, staleRows };
    })();
    const poll = setInterval(noteRefreshes, 500);
    let chaosResult: Awaited<typeof chaos>;
    try {
      chaosResult = await chaos;
    } catch (e) {
      stopped = true;
      throw e;
    } finally {
      await Promise.all(load);
      clearInterval(poll);
    }
    noteRefreshes();
    const logText = stack.logs();
    const refreshedInLogs = logText
      .split('\n')
      .filter((l) => l.includes('"msg":"Forgejo token refreshed"')).length;
    const refusedInLogs = logText
      .split('\n')
      .filter((l) => /"msg":"(Forgejo credential is dead|Forgejo refused a refresh token)/.test(l)).length;
    const forgejoCalls = [...refreshes];
    // A child that has just exited (a rotation's old one) loses its row a moment later, when its
    // broker hears the exit: a row naming a dead process counts only if it is still there 2 s on.
    const deadRows = async () =>
      (await sql.query('SELECT pid FROM live_child')).rows.filter((r) => !running(Number(r.pid))).length;
    let deadChildRows = await deadRows();
    for (let i = 0; i < 40 && deadChildRows > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      deadChildRows = await deadRows();
    }
    const perClient = figures.sort((a, b) => a.label.localeCompare(b.label));
    const failovers = perClient.map((c) => c.failoverMs).filter((x): x is number => x !== undefined);
    return {
      seconds: o.seconds,
      users: o.users,
      clients: clients.length,
      calls: perClient.reduce((n, c) => n + c.calls, 0),
      retried: perClient.reduce((n, c) => n + c.retried, 0),
      errors: perClient.reduce((n, c) => n + c.errors.length, 0),
      wrongUser: perClient.reduce((n, c) => n + c.wrongUser, 0),
      clientsFailedOver: failovers.length,
      failoverMsMax: failovers.length ? Math.max(...failovers) : null,
      killedChildren: chaosResult.killedChildren,
      killedChildrenLeft: chaosResult.left,
      staleChildRows: chaosResult.staleRows,
      deadChildRows,
      forgejoRefreshes: stack.emulator ? forgejoCalls.length : refreshedInLogs,
      forgejoRefused: stack.emulator ? forgejoCalls.filter((r) => r.status !== 200).length : refusedInLogs,
      alreadyUsedInLogs: logText.split('\n').filter((l) => /already used/i.test(l)).length,
      forgejoRefusals: forgejoCalls
        .filter((r) => r.status !== 200)
        .map((r) => ({ status: r.status, msAfterKill: r.at - killedAt })),
      brokerWarnings: warnings(logText),
      revocationMs: chaosResult.revocationMs,
      perClient,
    };
  } finally {
    for (const c of closers) await c().catch(() => {});
    await sql.end();
    await stack.close();
    if (o.logFile) writeFileSync(o.logFile, stack.logs());
  }
}

/** What must hold; each failed check as a sentence (empty when the proof passed). */
export function proofFailures(f: ProofFigures): string[] {
  const out: string[] = [];
  if (f.errors > 0) out.push(`${f.errors} calls failed even when sent again`);
  if (f.wrongUser > 0) out.push(`${f.wrongUser} calls answered with another user's login`);
  for (const c of f.perClient) {
    if (c.retried > 1)
      out.push(`${c.label} had to send ${c.retried} calls again (at most one): ${c.retryReasons.join('; ')}`);
    if (c.calls === 0) out.push(`${c.label} made no call`);
  }
  if (f.killedChildren === 0) out.push('the killed replica ran no child: the kill proved nothing');
  if (f.killedChildrenLeft > 0)
    out.push(`${f.killedChildrenLeft} children of the killed replica outlived it`);
  if (f.staleChildRows !== 0) out.push(`${f.staleChildRows} live_child rows of the killed replica remain`);
  if (f.deadChildRows !== 0) out.push(`${f.deadChildRows} live_child rows name a process that is gone`);
  if (f.clientsFailedOver === 0) out.push('no client met the killed replica');
  if (f.forgejoRefreshes === 0) out.push('no Forgejo token was refreshed during the run');
  if (f.forgejoRefused > 0) out.push(`Forgejo refused ${f.forgejoRefused} refreshes`);
  if (f.alreadyUsedInLogs > 0) out.push(`"already used" in ${f.alreadyUsedInLogs} broker log lines`);
  if (!(f.revocationMs < 1000))
    out.push(`the revocation took ${f.revocationMs} ms to reach the other replica`);
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      full: { type: 'boolean' },
      seconds: { type: 'string' },
      users: { type: 'string' },
      'token-ttl': { type: 'string' },
      'log-file': { type: 'string' },
      gitea: { type: 'boolean' },
    },
  });
  const base = values.full ? { seconds: 120, users: 4, tokenTtl: 5 } : { seconds: 30, users: 3, tokenTtl: 5 };
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const figures = await haProof({
    seconds: num(values.seconds, base.seconds),
    users: Math.min(num(values.users, base.users), ALPHABET.length),
    tokenTtl: num(values['token-ttl'], base.tokenTtl),
    log: (l: string) => console.error(l),
    ...(values['log-file'] ? { logFile: values['log-file'] } : {}),
    ...(values.gitea ? { forge: 'gitea' as const } : {}),
  });
  console.log(JSON.stringify(figures, null, 2));
  const failures = proofFailures(figures);
  for (const f of failures) console.error(`FAIL ${f}`);
  console.error(failures.length ? 'the replica proof FAILED' : 'the replica proof passed');
  process.exit(failures.length ? 1 : 0);
}
