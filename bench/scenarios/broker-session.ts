// Shared set-up of the broker-only parts: a broker around a server, users signed in.
import type { BenchConfig } from '../config.ts';
import type { StdioServer } from '../servers.ts';
import { type Broker, type Credentials, checkMcp, startBroker, type UserTokens } from '../targets/broker.ts';
import { TargetUnavailable } from '../targets/target.ts';

export type SignedIn = { user: Credentials; tokens: UserTokens };

/** Signs users in through the browser flow, a few at a time (each flow is several requests). */
export async function signInAll(broker: Broker, users: Credentials[], parallel = 4): Promise<SignedIn[]> {
  const out: SignedIn[] = new Array(users.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, users.length) }, async () => {
      while (next < users.length) {
        const i = next++;
        const user = users[i]!;
        out[i] = { user, tokens: await broker.signIn(user) };
      }
    }),
  );
  return out;
}

export const bearer = (s: SignedIn): Record<string, string> => ({
  authorization: `Bearer ${s.tokens.accessToken}`,
});

/**
 * Runs `fn` with a broker and `userCount` signed-in users; needs /mcp unless told otherwise. A checkout
 * without the needed endpoints yields TargetUnavailable, which the caller reports as a skip.
 */
export async function withBroker<T>(
  config: BenchConfig,
  server: StdioServer,
  userCount: number,
  fn: (broker: Broker, users: SignedIn[]) => Promise<T>,
  opts: { signIn?: boolean; prewarm?: boolean } = {},
): Promise<T> {
  const broker = await startBroker({
    prewarm: opts.prewarm ?? false,
    brokerRoot: config.brokerRoot,
    server,
    userCount,
    logLevel: config.brokerLogLevel,
    nodeArgs: config.brokerNodeArgs,
  });
  try {
    if (opts.signIn === false) return await fn(broker, []);
    const users = await signInAll(broker, broker.users);
    const first = users[0];
    if (!first) throw new TargetUnavailable('no users');
    await checkMcp(broker, first.tokens.accessToken);
    return await fn(broker, users);
  } finally {
    await broker.stop();
  }
}
