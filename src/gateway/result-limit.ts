// Tool results that fit the client. Claude.ai cuts a tool result at about 150k characters without
// telling the model; a listing of a big repository easily passes that. The broker cuts first, keeps
// the largest prefix of the text that fits with a note saying it was cut and how large the whole
// was, so the model can ask for less instead of reasoning on a silently truncated answer.
import type { Sink } from '../bridge/bridge.ts';
import type { JsonRpcMessage, JsonRpcRequest } from '../bridge/jsonrpc.ts';
import type { Logger } from '../log/log.ts';

type Block = { type?: unknown; text?: unknown } & Record<string, unknown>;

function note(total: number, kept: number, limit: number): string {
  return (
    `\n\n[forgejo-mcp-broker: this result was truncated: ${kept} of its ${total} characters are shown ` +
    `(limit ${limit}). Ask for less, such as a narrower query, a filter or a smaller page.]`
  );
}

function textLength(content: Block[]): number {
  let n = 0;
  for (const b of content) if (b.type === 'text' && typeof b.text === 'string') n += b.text.length;
  return n;
}

/**
 * The result cut to at most `limit` characters of text (the note included), or undefined if it fits.
 * Content blocks are kept in order up to the one where the budget runs out, which is cut; blocks
 * after it are dropped. Lengths are UTF-16 units (never fewer than characters), and a cut never
 * splits a surrogate pair.
 */
export function limitToolResult(
  result: Record<string, unknown>,
  limit: number,
): { result: Record<string, unknown>; total: number; kept: number } | undefined {
  const content = result['content'];
  if (limit <= 0 || !Array.isArray(content)) return undefined;
  const total = textLength(content as Block[]);
  if (total <= limit) return undefined;
  // The note's own length depends on the kept count in it: start from the longest note, then grow
  // the budget while the note with the larger count still fits.
  let budget = Math.max(0, limit - note(total, limit, limit).length);
  while (budget + 1 + note(total, budget + 1, limit).length <= limit) budget++;
  const out: Block[] = [];
  let kept = 0;
  for (const b of content as Block[]) {
    if (b.type !== 'text' || typeof b.text !== 'string') {
      out.push(b);
      continue;
    }
    if (b.text.length <= budget) {
      out.push(b);
      budget -= b.text.length;
      kept += b.text.length;
      continue;
    }
    let cut = budget;
    const last = b.text.charCodeAt(cut - 1);
    if (cut > 0 && last >= 0xd800 && last <= 0xdbff) cut--;
    if (cut > 0) out.push({ ...b, text: b.text.slice(0, cut) });
    kept += cut;
    break;
  }
  out.push({ type: 'text', text: note(total, kept, limit) });
  // Structured content mirrors the full text: kept only if it fits by itself.
  const { structuredContent, ...rest } = result;
  const keep = structuredContent !== undefined && JSON.stringify(structuredContent).length <= limit;
  return { result: { ...rest, content: out, ...(keep ? { structuredContent } : {}) }, total, kept };
}

/** Wraps the sink of a tools/call so its final result is cut to `limit` (0: unchanged) and logged. */
export function limitedSink(r: JsonRpcRequest, sink: Sink, limit: number, log: Logger, userId: number): Sink {
  if (r.method !== 'tools/call' || limit <= 0) return sink;
  return {
    send: (msg: JsonRpcMessage, final: boolean) => {
      if (!final || !('result' in msg) || typeof msg.result !== 'object' || msg.result === null)
        return sink.send(msg, final);
      const cut = limitToolResult(msg.result as Record<string, unknown>, limit);
      if (!cut) return sink.send(msg, final);
      // Sizes and the tool's name only: a result's content may hold anything the user can read.
      log.warn(
        { userId, tool: String(r.params?.['name'] ?? ''), chars: cut.total, kept: cut.kept, limit },
        'tool result truncated',
      );
      return sink.send({ ...msg, result: cut.result }, true);
    },
  };
}
