// Tool results longer than BROKER_MAX_RESULT_CHARS are cut by the broker, with a note, for every
// revision: the unit rules first, then real clients through the gateway to the fault-server child.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { limitToolResult } from '../../src/gateway/result-limit.ts';
import { type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';

const LIMIT = 50_000;
/** 200 000 characters that are not one repeated letter, so a wrong slice shows. */
const BIG = Array.from({ length: 20_000 }, (_, i) => `${String(i).padStart(9, '0')}|`).join('');

type Content = { type: string; text?: string; data?: string }[];
const textsOf = (r: unknown) => ((r as { content: Content }).content ?? []).map((c) => c.text ?? '');

function assertCut(result: unknown, input: string, limit: number): void {
  const texts = textsOf(result);
  const all = texts.join('');
  assert.ok(all.length <= limit, `${all.length} characters, limit ${limit}`);
  const noteText = texts.at(-1) ?? '';
  const m = /truncated: (\d+) of its (\d+) characters are shown \(limit (\d+)\)\. Ask for less/.exec(
    noteText,
  );
  assert.ok(m, `a note says so: ${noteText}`);
  assert.equal(Number(m[2]), input.length);
  assert.equal(Number(m[3]), limit);
  const kept = Number(m[1]);
  assert.equal(texts.slice(0, -1).join(''), input.slice(0, kept), 'a prefix of the original');
  assert.equal(all.length, limit, 'the largest prefix that fits, note included');
}

describe('limitToolResult', () => {
  it('keeps results that fit, and a limit of 0 keeps everything', () => {
    const r = { content: [{ type: 'text', text: 'a'.repeat(100) }] };
    assert.equal(limitToolResult(r, 100), undefined);
    assert.equal(limitToolResult({ content: [{ type: 'text', text: BIG }] }, 0), undefined);
    assert.equal(limitToolResult({ content: 'not a list' }, 10), undefined);
  });

  it('cuts across blocks in order, keeps non-text blocks before the cut, drops the rest', () => {
    const r = {
      content: [
        { type: 'text', text: 'A'.repeat(300) },
        { type: 'image', data: 'iVBOR', mimeType: 'image/png' },
        { type: 'text', text: 'B'.repeat(1000) },
        { type: 'text', text: 'C'.repeat(500) },
        { type: 'image', data: 'later', mimeType: 'image/png' },
      ],
      isError: false,
    };
    const cut = limitToolResult(r, 1000);
    assert.ok(cut);
    const content = cut.result['content'] as Content;
    assert.deepEqual(
      content.map((c) => c.type),
      ['text', 'image', 'text', 'text'],
    );
    assert.equal(content[0]?.text, 'A'.repeat(300));
    assert.match(content[2]?.text ?? '', /^B+$/);
    assert.equal(cut.total, 1800);
    assert.equal(cut.kept, 300 + (content[2]?.text ?? '').length);
    assert.equal(textsOf(cut.result).join('').length, 1000);
    assert.equal(cut.result['isError'], false);
  });

  it('never splits a surrogate pair, and keeps structured content only when it fits alone', () => {
    const emoji = '😀'.repeat(600); // 1200 UTF-16 units
    for (let limit = 300; limit < 320; limit++) {
      const cut = limitToolResult({ content: [{ type: 'text', text: emoji }] }, limit);
      assert.ok(cut);
      const kept = (cut.result['content'] as Content)[0]?.text ?? '';
      assert.ok(!/[\ud800-\udbff]$/.test(kept), `no lone high surrogate at limit ${limit}`);
      assert.equal(kept, emoji.slice(0, kept.length));
    }
    const small = limitToolResult(
      { content: [{ type: 'text', text: BIG }], structuredContent: { n: 1 } },
      1000,
    );
    assert.deepEqual(small?.result['structuredContent'], { n: 1 });
    const large = limitToolResult(
      { content: [{ type: 'text', text: BIG }], structuredContent: { big: BIG } },
      1000,
    );
    assert.equal(large?.result['structuredContent'], undefined);
  });
});

describe('tool results over the limit through the gateway', () => {
  let stack: GatewayStack;
  before(async () => {
    stack = await startGatewayStack({ maxResultChars: LIMIT });
  });
  after(() => stack.close());
  const auth = { headers: { authorization: 'Bearer token-alice' } };

  it('2025-11-25 (SDK v1): the largest prefix with a note; logged with sizes and no content', async () => {
    const client = new Client({ name: 'v1', version: '0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(stack.url), { requestInit: auth }));
    const r = await client.callTool({ name: 'echo', arguments: { text: BIG } });
    assertCut(r, BIG, LIMIT);
    const small = await client.callTool({ name: 'echo', arguments: { text: 'short' } });
    assert.deepEqual(textsOf(small), ['short'], 'a result that fits is untouched');
    const line = stack.logs.lines().find((l) => l['msg'] === 'tool result truncated');
    assert.ok(line);
    assert.equal(line['tool'], 'echo');
    assert.equal(line['chars'], BIG.length);
    assert.equal(line['limit'], LIMIT);
    assert.ok(!stack.logs.text().includes('000000123|'), 'no content in the log');
    await client.close();
  });

  it('2026-07-28 (SDK v2): cut the same way', async () => {
    const client = new ClientV2(
      { name: 'v2', version: '0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await client.connect(new TransportV2(new URL(stack.url), { requestInit: auth }));
    const r = await client.callTool({ name: 'echo', arguments: { text: BIG } });
    assertCut(r, BIG, LIMIT);
    await client.close();
  });

  it('with the limit off (0) the whole result passes', async () => {
    const off = await startGatewayStack({ maxResultChars: 0 });
    try {
      const client = new Client({ name: 'v1', version: '0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(off.url), { requestInit: auth }));
      assert.deepEqual(textsOf(await client.callTool({ name: 'echo', arguments: { text: BIG } })), [BIG]);
      await client.close();
    } finally {
      await off.close();
    }
  });
});
