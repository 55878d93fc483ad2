// 2026-07-28: every POST stands alone, checked against its `_meta` envelope and mirror headers, and
// goes to the user's child; server/discover is answered from the child's handshake.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  errorResponse,
  INVALID_REQUEST,
  isNotification,
  isResponse,
  type JsonRpcRequest,
  METHOD_NOT_FOUND,
  validateMessage,
} from '../bridge/jsonrpc.ts';
import type { PoolUser } from '../pool/pool.ts';
import { checkEnvelope, discoverResult, envelopeVersion, FORWARDED, MISSING_CAPABILITY } from './envelope.ts';
import type { Principal } from './gate.ts';
import { bridgeFor, HttpError, writeJson } from './http-errors.ts';
import { listen } from './listen.ts';
import type { ParkedCalls, TaskMode } from './mrtr.ts';
import { type Accepts, PostResponse } from './post-response.ts';
import type { Routing } from './routing.ts';
import { negotiatesTasks, TASK_METHODS, TASKS_EXTENSION, type Tasks } from './tasks.ts';
import { checkParamHeaders, type ToolCatalog } from './tool-catalog.ts';
import { type GatewayContext, policyOf, policyRefusal } from './types.ts';

export class StatelessTransport {
  readonly #ctx: GatewayContext;
  readonly #routing: Routing;
  readonly #parked: ParkedCalls;
  readonly #tools: ToolCatalog;
  readonly #tasks: Tasks;

  constructor(ctx: GatewayContext, routing: Routing, parked: ParkedCalls, tools: ToolCatalog, tasks: Tasks) {
    this.#ctx = ctx;
    this.#routing = routing;
    this.#parked = parked;
    this.#tools = tools;
    this.#tasks = tasks;
  }

  async post(
    req: IncomingMessage,
    res: ServerResponse,
    parsed: unknown,
    user: PoolUser,
    p: Principal,
    accepts: Accepts,
  ): Promise<void> {
    if (Array.isArray(parsed))
      throw new HttpError(400, INVALID_REQUEST, 'Invalid Request: batches are not allowed in 2026-07-28');
    const v = validateMessage(parsed);
    if (!v.ok) throw new HttpError(400, INVALID_REQUEST, `Invalid Request: ${v.reason}`);
    const m = v.message;
    if (isResponse(m))
      throw new HttpError(
        400,
        INVALID_REQUEST,
        'Invalid Request: 2026-07-28 clients answer with a retried request',
      );
    const cors = this.#ctx.gate.corsHeaders(req.headers.origin);
    if (isNotification(m)) {
      // Cancellation is the stream closing; other notifications have nothing to act on here.
      res.writeHead(202, cors);
      res.end();
      return;
    }
    const r = m as JsonRpcRequest;
    if (envelopeVersion(r) === undefined) {
      throw new HttpError(400, -32602, 'a 2026-07-28 request needs its _meta envelope');
    }
    const problem = checkEnvelope(r, req.headers);
    if (problem) throw new HttpError(problem.status, problem.code, problem.message, problem.data);
    if (TASK_METHODS.has(r.method) && this.#tasks.afterMs > 0) {
      const answer = this.#tasks.request(r, p);
      writeJson(res, answer.status ?? 200, answer.msg, cors);
      return;
    }
    if (r.method !== 'server/discover' && r.method !== 'subscriptions/listen' && !FORWARDED.has(r.method)) {
      writeJson(res, 404, errorResponse(r.id, METHOD_NOT_FOUND, `Method not found: ${r.method}`), cors);
      return;
    }
    const bridge = await bridgeFor(this.#ctx, user, [r], false, res, req.headers.origin);
    if (!bridge) return;
    const policy = policyOf(this.#ctx.o, p);
    const serverInfo = bridge.initializeResult?.['serverInfo'];
    let taskMode: TaskMode = 'when-slow';
    if (r.method === 'tools/call') {
      const tool = await this.#tools.entry(bridge, r);
      const mismatch = checkParamHeaders(tool, r, req.headers);
      if (mismatch) throw new HttpError(mismatch.status, mismatch.code, mismatch.message, mismatch.data);
      if (tool?.taskSupport === 'forbidden') taskMode = 'never';
      if (tool?.taskSupport === 'required' && this.#tasks.afterMs > 0) {
        if (!negotiatesTasks(r))
          throw new HttpError(400, MISSING_CAPABILITY, `${String(r.params?.['name'])} runs only as a task`, {
            requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } },
          });
        taskMode = 'now';
      }
    }
    if (r.method === 'server/discover') {
      writeJson(
        res,
        200,
        {
          jsonrpc: '2.0',
          id: r.id,
          result: discoverResult(
            bridge.initializeResult ?? {},
            this.#tasks.afterMs > 0 ? [TASKS_EXTENSION] : [],
          ),
        },
        cors,
      );
      return;
    }
    if (r.method === 'subscriptions/listen') {
      listen(this.#routing, this.#ctx.o.sse, r, res, p, bridge, cors, policy);
      return;
    }
    const post = new PostResponse(res, {
      accepts,
      expected: 1,
      batch: false,
      sse: this.#ctx.o.sse,
      headers: cors,
    });
    // Answered on the same path as the child's own "not found", so the two cannot be told apart.
    const refused = policyRefusal(this.#ctx.o, p, policy, r);
    if (refused) {
      post.send(refused, true);
      return;
    }
    const state = r.params?.['requestState'];
    if (typeof state === 'string' && this.#parked.resume(r, state, post, p, serverInfo)) return;
    this.#parked.start(r, post, p, bridge, serverInfo, policy, taskMode);
  }
}
