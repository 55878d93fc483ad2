import { BodyAborted, bodyTimeoutOf, limitRefusal, readBody, settleBeforeRefusal } from '../http/limits.ts';
import { type App, addRawRoute } from '../http/server.ts';
import type { Gateway } from './gateway.ts';

/** The SDK's own limit for one POST to an MCP endpoint. */
export const MCP_BODY_LIMIT = 4 * 1024 * 1024;

/**
 * /mcp, served from node:http directly (see RawRoute in src/http/server.ts): the body arrives raw so
 * the gateway answers every content problem in JSON-RPC terms, and the gateway writes the response
 * itself (JSON, SSE or 202).
 *
 * The gate runs on the headers, before a single body byte is read: a request without a valid token
 * (or from a foreign Host or Origin) is answered at once, and unless its body is small the
 * connection closes with the answer, so a stranger cannot make the broker hold a 4 MiB upload. An
 * admitted body must arrive within the body deadline and stay under MCP_BODY_LIMIT.
 */
export function registerMcpRoutes(app: App, gateway: Pick<Gateway, 'admit' | 'handle'>): void {
  const bodyTimeoutMs = bodyTimeoutOf(app);
  addRawRoute(app, '/mcp', async (req, res) => {
    const principal = await gateway.admit(req, res, () => settleBeforeRefusal(app, req, res));
    if (!principal) return;
    let body: Buffer | undefined;
    try {
      body = await readBody(req, MCP_BODY_LIMIT, bodyTimeoutMs);
    } catch (err) {
      if (err instanceof BodyAborted) return;
      const refused = limitRefusal(err);
      if (!refused) throw err;
      res.writeHead(refused.status, { ...refused.headers, 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: refused.message } }),
      );
      return;
    }
    await gateway.handle(req, res, body, principal);
  });
}
