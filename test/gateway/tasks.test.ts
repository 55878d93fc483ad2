// Tasks (io.modelcontextprotocol/tasks): slow 2026 tool calls of a client that negotiates the
// extension become tasks the client polls, answers and cancels; the child is the conformance
// fixture server (a real 2025 process that knows nothing of tasks). Tasks start after 300 ms here.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CONFORMANCE_SERVER, type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { ALL_CAPS, type Answer, type CallOptions, call2026, textOf } from '../support/stateless-call.ts';
import { eventually } from '../support/wait.ts';

const TASKS = { ...ALL_CAPS, extensions: { 'io.modelcontextprotocol/tasks': {} } };

let stack: GatewayStack;
before(async () => {
  stack = await startGatewayStack({
    args: [CONFORMANCE_SERVER],
    tasks: { afterMs: 300, ttlMs: 60_000, maxPerUser: 20 },
  });
});
after(() => stack.close());

function client(s: () => GatewayStack) {
  const call = (method: string, params: Record<string, unknown>, o: CallOptions = {}) =>
    call2026(s().url, method, params, { caps: TASKS, ...o });
  const tool = (name: string, args: Record<string, unknown> = {}, o: CallOptions = {}) =>
    call('tools/call', { name, arguments: args }, o);
  const get = (taskId: string, o: CallOptions = {}) => call('tasks/get', { taskId }, o);
  /** Polls tasks/get until the task leaves `working` (or `while` says stop). */
  async function poll(taskId: string, until: (status: string) => boolean): Promise<Record<string, unknown>> {
    for (let i = 0; i < 100; i++) {
      const r = (await get(taskId)).body.result as Record<string, unknown>;
      if (until(String(r['status']))) return r;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`task ${taskId} never got there`);
  }
  return { call, tool, get, poll };
}

const { call, tool, get, poll } = client(() => stack);

function created(a: Answer): string {
  const r = a.body.result ?? {};
  assert.equal(r['resultType'], 'task', JSON.stringify(a.body));
  assert.equal(r['status'], 'working');
  assert.match(String(r['createdAt']), /^\d{4}-\d\d-\d\dT/);
  assert.equal(r['ttlMs'], 60_000);
  assert.equal(Number.isInteger(r['pollIntervalMs']), true);
  assert.equal('result' in r || 'requestState' in r, false);
  return String(r['taskId']);
}

const cancelledAtChild = () => stack.logs.text().split('conformance-fixture: cancelled').length - 1;

describe('tasks', () => {
  it('a call still running after the threshold becomes a task; polling shows it working, then its result', async () => {
    const taskId = created(await tool('slow_compute', { seconds: 1, label: 'a' }));
    const working = await get(taskId);
    assert.equal(working.body.result?.['status'], 'working');
    assert.equal(working.body.result?.['resultType'], 'complete');
    assert.equal('result' in (working.body.result ?? {}), false);
    const done = await poll(taskId, (s) => s !== 'working');
    assert.equal(done['status'], 'completed');
    assert.equal(textOf(done['result'] as Record<string, unknown>), 'computed a after 1s');
  });

  it('a tool the child says never runs as a task, or a client that did not negotiate tasks, gets the plain result', async () => {
    const fast = await tool('greet', { name: 'W' });
    assert.equal(fast.body.result?.['resultType'], 'complete');
    assert.equal(textOf(fast), 'Hello, W!');
    const plain = await tool('slow_compute', { seconds: 1, label: 'b' }, { caps: ALL_CAPS });
    assert.equal(plain.body.result?.['resultType'], 'complete');
    assert.equal(textOf(plain), 'computed b after 1s');
    const refused = await call('tasks/get', { taskId: 'task_x' }, { caps: ALL_CAPS, id: 5 });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.id, 5);
    assert.equal(refused.body.error?.code, -32021);
    assert.deepEqual(refused.body.error?.data, {
      requiredCapabilities: { extensions: { 'io.modelcontextprotocol/tasks': {} } },
    });
  });

  it('tasks/cancel stops the child’s call and the task reads cancelled; a second cancel is the same ack', async () => {
    const before = cancelledAtChild();
    const taskId = created(await tool('slow_compute', { seconds: 60, label: 'c' }));
    const ack = await call('tasks/cancel', { taskId });
    assert.deepEqual(ack.body.result, { resultType: 'complete' });
    await eventually(() => cancelledAtChild() > before);
    assert.equal(cancelledAtChild() > before, true, 'the child heard notifications/cancelled');
    assert.equal((await get(taskId)).body.result?.['status'], 'cancelled');
    assert.deepEqual((await call('tasks/cancel', { taskId })).body.result, { resultType: 'complete' });
  });

  it('a question of the child shows as input_required; tasks/update answers it and the task completes', async () => {
    const taskId = created(await tool('confirm_delete'));
    const waiting = await poll(taskId, (s) => s === 'input_required');
    const asked = waiting['inputRequests'] as Record<string, { method: string }>;
    const keys = Object.keys(asked);
    assert.equal(keys.length, 1);
    assert.equal(asked[keys[0] as string]?.method, 'elicitation/create');
    const ack = await call('tasks/update', {
      taskId,
      inputResponses: { [keys[0] as string]: { action: 'accept', content: { confirm: true } } },
    });
    assert.deepEqual(ack.body.result, { resultType: 'complete' });
    const done = await poll(taskId, (s) => s !== 'input_required' && s !== 'working');
    assert.equal(textOf(done['result'] as Record<string, unknown>), 'deleted=true');
  });

  it('a task belongs to its user and grant', async () => {
    const taskId = created(await tool('slow_compute', { seconds: 1, label: 'd' }));
    for (const token of ['token-bob', 'token-alice-2']) {
      const other = await get(taskId, { token });
      assert.equal(other.body.error?.code, -32602, token);
    }
    assert.equal((await get(taskId)).body.result?.['taskId'], taskId);
  });

  it('a tool the child declares task-only needs the extension, and with it is a task at once', async () => {
    const refused = await tool('failing_job', {}, { caps: ALL_CAPS });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error?.code, -32021);
    const taskId = created(await tool('failing_job'));
    const done = await poll(taskId, (s) => s !== 'working');
    assert.equal(done['status'], 'completed'); // a tool error is a completed task with isError
    assert.equal((done['result'] as Record<string, unknown>)['isError'], true);
    const broken = created(await tool('protocol_error_job'));
    const failed = await poll(broken, (s) => s !== 'working');
    assert.equal(failed['status'], 'failed');
    assert.equal((failed['error'] as { code: number }).code, -32603);
  });
});

describe('task bounds', () => {
  let small: GatewayStack;
  before(async () => {
    small = await startGatewayStack({
      args: [CONFORMANCE_SERVER],
      tasks: { afterMs: 300, ttlMs: 1500, maxPerUser: 1 },
    });
  });
  after(() => small.close());
  const c = client(() => small);

  it('past the per-user cap a slow call stays an ordinary call; past its lifetime a task is gone and its call cancelled', async () => {
    const first = await c.tool('slow_compute', { seconds: 60, label: 'e' });
    assert.equal(first.body.result?.['resultType'], 'task');
    const taskId = String(first.body.result?.['taskId']);
    const second = await c.tool('slow_compute', { seconds: 1, label: 'f' });
    assert.equal(second.body.result?.['resultType'], 'complete');
    assert.equal(textOf(second), 'computed f after 1s');
    await new Promise((r) => setTimeout(r, 1600));
    const gone = await c.get(taskId);
    assert.equal(gone.body.error?.code, -32602);
    await eventually(() => small.logs.text().includes('conformance-fixture: cancelled'));
    assert.match(small.logs.text(), /conformance-fixture: cancelled/);
    // The slot is free again.
    assert.equal(
      (await c.tool('slow_compute', { seconds: 60, label: 'g' })).body.result?.['resultType'],
      'task',
    );
  });
});
