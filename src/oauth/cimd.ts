// Client ID Metadata Documents (MCP 2025-11-25): an https URL used as client_id is fetched and
// validated. The fetch is the broker's one outbound request chosen by a stranger, so it is guarded
// against SSRF: the host is resolved first, private/loopback/link-local/multicast addresses are
// refused (unless the host is on the development allow-list), the checked address is the one
// connected to (no DNS rebinding), with a size cap, a timeout, no redirects, and a bounded cache.
import { lookup as dnsLookup } from 'node:dns/promises';
import { request } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { ClientRecord } from '../store/store.ts';
import { checkRedirectUris, cleanClientName } from './register.ts';
import { OAuthError } from './respond.ts';

const MAX_BYTES = 64 * 1024;
const MAX_ENTRIES = 200;
const DEFAULT_MAX_AGE_MS = 5 * 60_000;
const MAX_MAX_AGE_MS = 24 * 3_600_000;

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['2001:db8::', 32],
  ['100::', 64],
  ['2002::', 16],
] as const)
  blocked.addSubnet(net, bits, 'ipv6');

/** True for addresses a CIMD fetch must not reach: private, loopback, link-local, multicast, unspecified. */
export function isForbiddenAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isForbiddenAddress(mapped[1] as string);
  const family = isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export type CimdOptions = {
  /** Host names allowed to resolve to forbidden addresses (development only). */
  allowPrivateHosts: string[];
  /** Extra trusted CA certificates (PEM), e.g. a test's self-signed server. */
  extraCa?: string[];
  timeoutMs?: number;
};

type Entry = { client: ClientRecord; expiresAt: number };

export function isCimdClientId(clientId: string): boolean {
  return clientId.startsWith('https://');
}

export class CimdResolver {
  readonly #opts: CimdOptions;
  readonly #cache = new Map<string, Entry>();

  constructor(opts: CimdOptions) {
    this.#opts = opts;
  }

  async resolve(clientId: string, now = Date.now()): Promise<ClientRecord> {
    const hit = this.#cache.get(clientId);
    if (hit && hit.expiresAt > now) {
      this.#cache.delete(clientId); // re-insert: Map order is the LRU order
      this.#cache.set(clientId, hit);
      return hit.client;
    }
    const url = checkUrl(clientId);
    const { body, maxAgeMs } = await this.#fetch(url);
    const client = parseDocument(clientId, body, now);
    this.#cache.delete(clientId);
    this.#cache.set(clientId, { client, expiresAt: now + maxAgeMs });
    while (this.#cache.size > MAX_ENTRIES) this.#cache.delete(this.#cache.keys().next().value as string);
    return client;
  }

  #fetch(url: URL): Promise<{ body: string; maxAgeMs: number }> {
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const allowPrivate = this.#opts.allowPrivateHosts.includes(host);
    if (isIP(host) && !allowPrivate && isForbiddenAddress(host)) {
      return Promise.reject(new OAuthError('invalid_client', 'client metadata host is a private address'));
    }
    const lookup: LookupFunction = (hostname, options, callback) => {
      dnsLookup(hostname, { all: true }).then(
        (addresses) => {
          const ok = addresses.filter((a) => allowPrivate || !isForbiddenAddress(a.address));
          const first = ok[0];
          if (!first || ok.length !== addresses.length) {
            callback(new Error('client metadata host resolves to a private address'), '', 0);
          } else if (options.all) {
            (callback as unknown as (e: null, a: typeof ok) => void)(null, [first]);
          } else callback(null, first.address, first.family);
        },
        (e: NodeJS.ErrnoException) => callback(e, '', 0),
      );
    };
    const ca = this.#opts.extraCa?.length ? [...rootCertificates, ...this.#opts.extraCa] : undefined;
    return new Promise((resolve, reject) => {
      const fail = (why: string) =>
        reject(new OAuthError('invalid_client', `client metadata document: ${why}`));
      const req = request(
        url,
        {
          method: 'GET',
          agent: false,
          lookup,
          ca,
          headers: { accept: 'application/json' },
          timeout: this.#opts.timeoutMs ?? 5000,
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return fail(`fetch answered HTTP ${res.statusCode}`);
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BYTES) {
              req.destroy();
              return fail(`larger than ${MAX_BYTES} bytes`);
            }
            chunks.push(c);
          });
          res.on('end', () =>
            resolve({
              body: Buffer.concat(chunks).toString('utf8'),
              maxAgeMs: maxAge(res.headers['cache-control']),
            }),
          );
          res.on('error', () => fail('the response broke off'));
        },
      );
      req.on('timeout', () => {
        req.destroy();
        fail('fetch timed out');
      });
      req.on('error', (e) => fail(e.message));
      req.end();
    });
  }
}

function checkUrl(clientId: string): URL {
  if (clientId.length > 2000 || !URL.canParse(clientId))
    throw new OAuthError('invalid_client', 'client_id is not a valid URL');
  const url = new URL(clientId);
  if (url.protocol !== 'https:' || url.pathname === '/' || url.hash || url.username || url.password) {
    throw new OAuthError(
      'invalid_client',
      'a client_id URL must be https with a path, no fragment or credentials',
    );
  }
  if (url.pathname.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw new OAuthError('invalid_client', 'a client_id URL must not have dot segments');
  }
  return url;
}

function maxAge(cacheControl: string | undefined): number {
  const m = /(?:^|,)\s*max-age=(\d+)/i.exec(cacheControl ?? '');
  if (/no-store|no-cache/i.test(cacheControl ?? '')) return 0;
  return m ? Math.min(Number(m[1]) * 1000, MAX_MAX_AGE_MS) : DEFAULT_MAX_AGE_MS;
}

function parseDocument(clientId: string, body: string, now: number): ClientRecord {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new OAuthError('invalid_client', 'client metadata document is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new OAuthError('invalid_client', 'client metadata document is not a JSON object');
  }
  const m = doc as Record<string, unknown>;
  if (m['client_id'] !== clientId)
    throw new OAuthError('invalid_client', 'client metadata client_id differs from its URL');
  const method = m['token_endpoint_auth_method'] ?? 'none';
  if (method !== 'none')
    throw new OAuthError(
      'invalid_client',
      'client metadata documents must use token_endpoint_auth_method none',
    );
  if (m['client_secret'] !== undefined)
    throw new OAuthError('invalid_client', 'client metadata must not carry a secret');
  const redirectUris = checkRedirectUris(m['redirect_uris'], true, 'invalid_client');
  let name: string;
  try {
    name = cleanClientName(m['client_name'], new URL(clientId).host);
  } catch {
    throw new OAuthError('invalid_client', 'client metadata client_name is not a printable string');
  }
  return {
    clientId,
    secretHash: null,
    authMethod: 'none',
    name,
    redirectUris,
    metadata: { client_id: clientId, client_name: name, redirect_uris: redirectUris },
    createdAt: now,
    usedAt: now,
  };
}
