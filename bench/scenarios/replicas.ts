// 6. Replicas: calls/s through Debian's Caddy running deploy/compose-ha/Caddyfile (adapted to plain
// HTTP on loopback, as the lean driver speaks HTTP only; TLS would cost Caddy the same either way)
// in front of one broker replica, then two, on one PostgreSQL database. The same Caddy, the same
// users and tokens throughout: for the first window the second upstream is down (Caddy's health
// check keeps it out), then it is started and Caddy's check lets it in. Each user keeps one call in
// flight on their own 2025 session; the Authorization hash decides each user's replica.
import pg from 'pg';
import type { EmulatorUser } from '../../emulator/forgejo/emulator.ts';
import { registerClient } from '../../test/support/oauth-harness.ts';
import { fullFlow } from '../../test/support/oauth-stack.ts';
import { startReplicas } from '../../test/support/replicas.ts';
import type { BenchConfig } from '../config.ts';
import { runLeanJob } from '../drivers/lean.ts';
import type { ReplicasLevel, ReplicasResult } from '../results.ts';
import type { StdioServer } from '../servers.ts';

const REDIRECT = 'http://127.0.0.1:41234/cb';

export async function replicas(config: BenchConfig, server: StdioServer): Promise<ReplicasResult> {
  const users: EmulatorUser[] = Array.from({ length: config.replicasUsers }, (_, i) => ({
    id: 3001 + i,
    login: `bench${i + 1}`,
    password: `bench${i + 1}-pw`,
  }));
  const stack = await startReplicas({
    users,
    replicas: 2,
    running: 1,
    http: true,
    env: { LOG_LEVEL: config.brokerLogLevel },
  });
  const sql = new pg.Pool({ connectionString: stack.db, max: 1 });
  try {
    const headers: Record<string, string>[] = [];
    for (const u of users) {
      const c = await registerClient(stack.url, {
        redirect_uris: ['http://127.0.0.1/cb'],
        token_endpoint_auth_method: 'none',
      });
      const { tokens } = await fullFlow(stack.url, {
        clientId: c.client_id,
        redirectUri: REDIRECT,
        login: u.login,
      });
      headers.push({ authorization: `Bearer ${tokens.access_token}` });
    }
    const levels: ReplicasLevel[] = [];
    for (const running of [1, 2]) {
      if (running === 2) await stack.restart(1);
      const first = stack.replicas[0]?.broker;
      if (!first) throw new Error('replica 1 is not running');
      const result = await runLeanJob(
        {
          mode: 'scale',
          url: `${stack.url}/mcp`,
          // CPU is read off this process only: the machine's figure covers both replicas.
          pid: first.proc.pid as number,
          users: headers,
          tool: server.tool,
          toolArgs: server.toolArgs,
          expectText: server.expectText,
          durationMs: config.replicasDurationMs,
        },
        config.runTimeoutMs,
      );
      if (result.mode !== 'rate') throw new Error('lean driver answered another mode');
      // The Authorization hash's split of the users: those whose calls went to the second replica
      // have a child there (the first still holds idle children of the first window).
      const second = stack.replicas[1]?.broker?.proc.pid;
      const { rows } = await sql.query(
        'SELECT count(DISTINCT login)::int AS users FROM live_child WHERE broker_pid = $1',
        [second ?? -1],
      );
      const onSecond = running === 2 ? Number(rows[0]?.users ?? 0) : 0;
      levels.push({
        replicas: running,
        run: result.run,
        usersOn: running === 2 ? [users.length - onSecond, onSecond] : [users.length],
      });
    }
    return { available: true, users: users.length, levels };
  } finally {
    await sql.end();
    await stack.close();
  }
}
