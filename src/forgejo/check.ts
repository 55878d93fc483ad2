// Is Forgejo set up for the broker? Checked at startup and by `forgejo-mcp-broker check`, so a wrong
// URL, client ID or secret shows before the first user signs in. Two requests: Forgejo's OpenID
// discovery document, and a code exchange with a code that cannot exist. Forgejo checks the client
// before the code, so its refusal tells a wrong ID or secret ("cannot load client", "invalid client
// secret") from good credentials ("client is not authorized", the code being bogus).
import { randomBytes } from 'node:crypto';

export type ForgejoCheckOptions = {
  forgejoUrl: string;
  clientId: string;
  clientSecret: string;
  /** `<public>/oauth/callback`: sent as the code exchange would send it. */
  redirectUri: string;
  timeoutMs?: number;
};

export type ForgejoProblem = {
  /** `error`: sign-in cannot work; `warn`: it may, but something looks off. */
  severity: 'error' | 'warn';
  problem: string;
  fix: string;
};

export type ForgejoCheck = { passed: string[]; problems: ForgejoProblem[] };

const APPLICATIONS = 'Site administration → Integrations → Applications (or Settings → Applications)';

function describeFailure(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'no answer in time';
  return err.cause?.code ?? err.cause?.message ?? err.message;
}

async function readJson(res: Response): Promise<Record<string, unknown> | undefined> {
  try {
    const body = (await res.json()) as unknown;
    return body && typeof body === 'object' && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export async function checkForgejo(o: ForgejoCheckOptions): Promise<ForgejoCheck> {
  const root = o.forgejoUrl.replace(/\/+$/, '');
  const timeout = () => AbortSignal.timeout(o.timeoutMs ?? 10_000);
  const passed: string[] = [];
  const problems: ForgejoProblem[] = [];
  const error = (problem: string, fix: string) => problems.push({ severity: 'error', problem, fix });

  const discoveryUrl = `${root}/.well-known/openid-configuration`;
  let res: Response;
  try {
    res = await fetch(discoveryUrl, { signal: timeout(), redirect: 'manual' });
  } catch (e) {
    error(
      `cannot reach Forgejo at ${root} (${describeFailure(e)})`,
      'check FORGEJO_URL, and that this machine reaches it (DNS, firewall, proxy, TLS certificate)',
    );
    return { passed, problems };
  }
  if (res.status !== 200) await res.body?.cancel();
  const discovery = res.status === 200 ? await readJson(res) : undefined;
  if (!discovery || typeof discovery['token_endpoint'] !== 'string') {
    error(
      `${discoveryUrl} answered ${res.status} without an OpenID discovery document: ${root} is not the root of a Forgejo with OAuth2 enabled`,
      "set FORGEJO_URL to Forgejo's root URL (its ROOT_URL), with [oauth2] ENABLED = true in Forgejo's app.ini",
    );
    return { passed, problems };
  }
  passed.push(`Forgejo's discovery document at ${discoveryUrl}`);
  if (typeof discovery['issuer'] === 'string' && discovery['issuer'].replace(/\/+$/, '') !== root) {
    problems.push({
      severity: 'warn',
      problem: `Forgejo calls itself ${discovery['issuer']}, not FORGEJO_URL ${root}`,
      fix: `set FORGEJO_URL=${discovery['issuer']} unless ${root} is how both this machine and users' browsers reach that Forgejo`,
    });
  }

  const tokenUrl = `${root}/login/oauth/access_token`;
  try {
    res = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: o.clientId,
        client_secret: o.clientSecret,
        redirect_uri: o.redirectUri,
        // A code that was never issued: only the client credentials can be right or wrong here.
        code: `broker-check-${randomBytes(16).toString('hex')}`,
      }),
      signal: timeout(),
      redirect: 'manual',
    });
  } catch (e) {
    error(
      `cannot reach Forgejo's token endpoint ${tokenUrl} (${describeFailure(e)})`,
      'check that this machine reaches FORGEJO_URL',
    );
    return { passed, problems };
  }
  const body = await readJson(res);
  const code = typeof body?.['error'] === 'string' ? body['error'] : '';
  const description = typeof body?.['error_description'] === 'string' ? body['error_description'] : '';
  if (code === 'unauthorized_client' && /not authorized/i.test(description)) {
    passed.push(`FORGEJO_CLIENT_ID and FORGEJO_CLIENT_SECRET accepted by ${tokenUrl}`);
  } else if (code === 'invalid_client' && /cannot load client/i.test(description)) {
    error(
      `Forgejo has no OAuth2 application with FORGEJO_CLIENT_ID ${o.clientId} (${code}: ${description})`,
      `copy the client ID of the broker's application from Forgejo (${APPLICATIONS})`,
    );
  } else if (/client secret/i.test(description)) {
    error(
      `Forgejo refuses FORGEJO_CLIENT_SECRET for the application ${o.clientId} (${code}: ${description})`,
      `copy the secret again, or regenerate it on the application's page in Forgejo (${APPLICATIONS}) and set the new one`,
    );
  } else if (/redirect/i.test(description)) {
    error(
      `Forgejo's application ${o.clientId} does not accept the redirect URI ${o.redirectUri} (${code}: ${description})`,
      `add ${o.redirectUri} to the application's Redirect URIs in Forgejo (${APPLICATIONS}), or fix BROKER_PUBLIC_URL`,
    );
  } else {
    error(
      `unexpected answer from ${tokenUrl} to a test code exchange: ${res.status}${code ? ` ${code}` : ''}${description ? `: ${description}` : ''}`,
      "check that FORGEJO_URL is Forgejo's root URL and that no proxy in between rewrites /login/oauth/",
    );
  }
  return { passed, problems };
}
