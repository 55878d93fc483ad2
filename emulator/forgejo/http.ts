// The emulator's small HTTP vocabulary: a parsed request, a reply value, and the request log's
// redaction. Handlers are pure functions of (state, request) → reply, so the router alone writes.
import type { IncomingMessage } from 'node:http';

export type AuthScheme = 'token' | 'bearer' | 'basic' | 'none';

export type Incoming = {
  method: string;
  path: string;
  query: URLSearchParams;
  rawQuery: string;
  headers: IncomingMessage['headers'];
  cookies: Map<string, string>;
  /** Form or JSON body fields (first value of a repeated form field). */
  form: Map<string, string>;
  /** The JSON body when the request sent one (API writes read objects from it). */
  json: unknown;
};

export type Reply = {
  status: number;
  headers?: Record<string, string | string[]>;
  body?: string;
  /** Login the request's credential or session resolved to, for the request log. */
  user?: string;
};

export const BODY_LIMIT = 64 * 1024;

export class BodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) throw new BodyError(413, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Fields of a urlencoded or JSON body; JSON scalars become strings as Go's form binding does. */
export function parseBody(
  contentType: string | undefined,
  body: string,
): { form: Map<string, string>; json: unknown } {
  const form = new Map<string, string>();
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (body === '') return { form, json: undefined };
  if (type === 'application/json') {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new BodyError(400, 'invalid JSON body');
    }
    if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
      for (const [k, v] of Object.entries(json)) {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') form.set(k, String(v));
      }
    }
    return { form, json };
  }
  for (const [k, v] of new URLSearchParams(body)) if (!form.has(k)) form.set(k, v);
  return { form, json: undefined };
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { 'content-type': 'application/json;charset=utf-8', ...headers },
    body: JSON.stringify(value),
  };
}

export function html(status: number, page: string, headers: Record<string, string | string[]> = {}): Reply {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8', ...headers }, body: page };
}

export function text(status: number, body: string, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers }, body };
}

export function redirect(location: string, headers: Record<string, string | string[]> = {}): Reply {
  return { status: 303, headers: { location, ...headers } };
}

/** The scheme of the Authorization header as the request log records it (never the credential). */
export function authScheme(header: string | undefined): AuthScheme {
  const scheme = (header ?? '').trim().split(/\s+/)[0]?.toLowerCase();
  return scheme === 'token' || scheme === 'bearer' || scheme === 'basic' ? scheme : 'none';
}

const SECRET_PARAMS = new Set([
  'code',
  'client_secret',
  'refresh_token',
  'code_verifier',
  'access_token',
  'token',
  'password',
  'id_token',
]);

/** The query string with the values of secret-bearing parameters removed, for the request log. */
export function redactQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const out = new URLSearchParams();
  for (const [k, v] of new URLSearchParams(rawQuery)) out.append(k, SECRET_PARAMS.has(k) ? '' : v);
  return out.toString();
}

export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}
