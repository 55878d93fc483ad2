import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resultOk } from '../../bench/drivers/load.ts';
import { type HttpReply, rpcResult, toolCallBody } from '../../bench/drivers/mcp-http.ts';

const reply = (contentType: string, body: string, status = 200): HttpReply => ({
  status,
  headers: { 'content-type': contentType },
  body,
});

test('the lean driver reads a result from an SSE stream, skipping other messages', () => {
  const body = [
    'event: message\nid: 1\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n',
    'event: message\ndata: {"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"Echo: bench"}]}}\n\n',
  ].join('');
  const result = rpcResult(reply('text/event-stream', body), 7);
  assert.equal(resultOk(result, 'Echo: bench'), true);
});

test('the lean driver reads JSON bodies and batches, and refuses errors and wrong ids', () => {
  assert.deepEqual(
    rpcResult(reply('application/json; charset=utf-8', '{"jsonrpc":"2.0","id":3,"result":{}}'), 3),
    {},
  );
  assert.deepEqual(rpcResult(reply('application/json', '[{"jsonrpc":"2.0","id":4,"result":{"a":1}}]'), 4), {
    a: 1,
  });
  assert.throws(
    () =>
      rpcResult(
        reply('application/json', '{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"boom"}}'),
        3,
      ),
    /JSON-RPC error -32603: boom/,
  );
  assert.throws(
    () => rpcResult(reply('application/json', '{"jsonrpc":"2.0","id":2,"result":{}}'), 3),
    /no response with id 3/,
  );
  assert.throws(() => rpcResult(reply('application/json', '{}', 401), 3), /HTTP 401/);
  assert.throws(() => rpcResult(reply('text/html', '<p>hi</p>'), 3), /unexpected content-type/);
});

test('a tool result counts only when it is a success with the expected text', () => {
  const ok = { content: [{ type: 'text', text: '{"Result":"Forgejo MCP Server version: 2"}' }] };
  assert.equal(resultOk(ok, 'Forgejo MCP Server version:'), true);
  assert.equal(resultOk({ ...ok, isError: true }, 'Forgejo MCP Server version:'), false);
  assert.equal(resultOk({ content: [] }, 'x'), false);
  assert.equal(resultOk(null, 'x'), false);
});

test('pre-built tools/call bodies differ only by id', () => {
  const body = toolCallBody('echo', { message: 'bench' });
  assert.deepEqual(JSON.parse(body(12)), {
    jsonrpc: '2.0',
    id: 12,
    method: 'tools/call',
    params: { name: 'echo', arguments: { message: 'bench' } },
  });
});
