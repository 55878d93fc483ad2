// Client ID Metadata Documents (MCP 2025-11-25): an https URL used as client_id is fetched and
// validated. The fetch is the broker's one outbound request chosen by a stranger, so it is guarded:
// - SSRF: every address the host resolves to must be global unicast by ipaddr.js's classification
//   of the IANA special-purpose registries (and, for IPv6, inside 2000::/3), so IPv4-compatible and
//   IPv4-mapped forms, NAT64, 6to4, Teredo and the rest are refused; the checked address is the one
//   connected to (no DNS rebinding); no redirects.
// - Cost: one deadline for the whole fetch (lookup to last byte), a small size cap, at most a few
//   fetches at once, single flight per URL, documents cached per their max-age and failures
//   briefly, and a fetch nobody waits for any more (the browser left) is aborted.
// - No oracle: whatever went wrong after the URL's shape was checked, the client sees one message;
//   the reason goes to the log.
import { lookup as dnsLookup } from 'node:dns/promises';
import { request } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import ipaddr from 'ipaddr.js';
import type { Logger } from '../log/log.ts';
import type { ClientRecord } from '../store/store.ts';
import { checkRedirectUris, cleanClientName } from './register.ts';
import { OAuthError } from './respond.ts';

/** Documents are a few hundred bytes; some real ones pass 5 KiB, none comes near this. */
const MAX_BYTES = 16 * 1024;
const MAX_DOCUMENTS = 200;
const MAX_FAILURES = 1000;
/** A URL that failed is not fetched again for this long. */
const FAILURE_TTL_MS = 30_000;
const MAX_IN_FLIGHT = 32;
const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_AGE_MS = 5 * 60_000;
const MAX_MAX_AGE_MS = 24 * 3_600_000;

/** All a client learns when a document could not be used; the log says why. */
export const UNUSABLE_DOCUMENT = 'the client metadata document could not be fetched or is not valid';

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/**
 * True for every address a CIMD fetch must not reach: anything but global unicast in the IANA
 * IPv4 and IPv6 special-purpose registries (as ipaddr.js classifies them), any IPv6 address outside
 * 2000::/3 (which covers ::/96 IPv4-compatible and ::ffff:0:0/96 IPv4-mapped forms, NAT64 and
 * whatever IANA has not allocated), and anything that is not an IP address.
 */
export function isForbiddenAddress(address: string): boolean {
  if (isIP(address) === 0) return true;
  const a = ipaddr.parse(address);
  if (a.range() !== 'unicast') return true;
  return a.kind() === 'ipv6' && !(a as ipaddr.IPv6).match(GLOBAL_UNICAST_V6);
}

export type CimdOptions = {
  /** Host names allowed to resolve to forbidden addresses (development only). */
  allowPrivateHosts: string[];
  /** Extra trusted CA certificates (PEM), e.g. a test's self-signed server. */
  extraCa?: string[];
  /** One deadline for the whole fetch: lookup, connection, TLS, headers and the last body byte. */
  timeoutMs?: number;
  log?: Logger;
};

export type ResolveOptions = {
  /** Aborted when the caller stops waiting (the browser left, the request timed out). */
  signal?: AbortSignal;
  now?: number;
};

/** Why a document was refused: for the log only. */
class Unusable extends Error {}

type Flight = { promise: Promise<ClientRecord>; waiters: number; controller: AbortController };

export function isCimdClientId(clientId: string): boolean {
  return clientId.startsWith('https://');
}

export class CimdResolver {
  readonly #opts: CimdOptions;
  /** Map order is the LRU order. */
  readonly #documents = new Map<string, { client: ClientRecord; expiresAt: number }>();
  readonly #failures = new Map<string, number>();
  readonly #flights = new Map<string, Flight>();

  constructor(opts: CimdOptions) {
    this.#opts = opts;
  }

  async resolve(clientId: string, { signal, now = Date.now() }: ResolveOptions = {}): Promise<ClientRecord> {
    const hit = this.#documents.get(clientId);
    if (hit && hit.expiresAt > now) {
      this.#documents.delete(clientId);
      this.#documents.set(clientId, hit);
      return hit.client;
    }
    const failedUntil = this.#failures.get(clientId);
    if (failedUntil !== undefined && failedUntil > now)
      throw new OAuthError('invalid_client', UNUSABLE_DOCUMENT);
    const url = checkUrl(clientId);
    let flight = this.#flights.get(clientId);
    if (!flight) {
      if (this.#flights.size >= MAX_IN_FLIGHT) {
        this.#opts.log?.warn({ clientId }, 'client metadata document: too many fetches in progress');
        throw new OAuthError('invalid_client', UNUSABLE_DOCUMENT);
      }
      flight = this.#start(clientId, url, now);
    }
    return wait(flight, signal);
  }

  #start(clientId: string, url: URL, now: number): Flight {
    const controller = new AbortController();
    const promise = this.#fetch(url, controller.signal)
      .then(({ body, maxAgeMs }) => {
        const client = parseDocument(clientId, body, now);
        if (maxAgeMs > 0)
          remember(this.#documents, clientId, { client, expiresAt: now + maxAgeMs }, MAX_DOCUMENTS);
        return client;
      })
      .catch((e: unknown) => {
        const reason = (e as Error).message;
        if (controller.signal.aborted) {
          this.#opts.log?.info({ clientId }, 'client metadata document: fetch abandoned, nobody is waiting');
        } else {
          remember(this.#failures, clientId, now + FAILURE_TTL_MS, MAX_FAILURES);
          this.#opts.log?.warn({ clientId, reason }, 'client metadata document refused');
        }
        throw new OAuthError('invalid_client', UNUSABLE_DOCUMENT);
      })
      .finally(() => this.#flights.delete(clientId));
    promise.catch(() => {});
    const flight: Flight = { promise, waiters: 0, controller };
    this.#flights.set(clientId, flight);
    return flight;
  }

  #fetch(url: URL, signal: AbortSignal): Promise<{ body: string; maxAgeMs: number }> {
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const allowPrivate = this.#opts.allowPrivateHosts.includes(host);
    if (isIP(host) && !allowPrivate && isForbiddenAddress(host)) {
      return Promise.reject(new Unusable(`the host ${host} is not a public address`));
    }
    const lookup: LookupFunction = (hostname, options, callback) => {
      dnsLookup(hostname, { all: true }).then(
        (addresses) => {
          const ok = addresses.filter((a) => allowPrivate || !isForbiddenAddress(a.address));
          const first = ok[0];
          if (!first || ok.length !== addresses.length) {
            const all = addresses.map((a) => a.address).join(', ');
            callback(new Unusable(`${hostname} resolves to a non-public address (${all})`), '', 0);
          } else if (options.all) {
            (callback as unknown as (e: null, a: typeof ok) => void)(null, [first]);
          } else callback(null, first.address, first.family);
        },
        (e: NodeJS.ErrnoException) => callback(e, '', 0),
      );
    };
    const ca = this.#opts.extraCa?.length ? [...rootCertificates, ...this.#opts.extraCa] : undefined;
    const timeoutMs = this.#opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (e: Error | undefined, value?: { body: string; maxAgeMs: number }) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        signal.removeEventListener('abort', onAbort);
        if (e) {
          req.destroy();
          reject(e);
        } else resolve(value as { body: string; maxAgeMs: number });
      };
      const deadline = setTimeout(
        () => finish(new Unusable(`no whole answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () => finish(new Unusable('abandoned'));
      signal.addEventListener('abort', onAbort, { once: true });
      const req = request(
        url,
        { method: 'GET', agent: false, lookup, ca, headers: { accept: 'application/json' } },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return finish(new Unusable(`the server answered HTTP ${res.statusCode}`));
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BYTES) return finish(new Unusable(`larger than ${MAX_BYTES} bytes`));
            chunks.push(c);
          });
          res.on('end', () =>
            finish(undefined, {
              body: Buffer.concat(chunks).toString('utf8'),
              maxAgeMs: maxAge(res.headers['cache-control']),
            }),
          );
          res.on('error', () => finish(new Unusable('the answer broke off')));
        },
      );
      req.on('error', (e) => finish(e instanceof Unusable ? e : new Unusable(e.message)));
      req.end();
    });
  }
}

/** One caller waits on a shared fetch; the fetch is abandoned once its last caller stopped waiting. */
function wait(flight: Flight, signal: AbortSignal | undefined): Promise<ClientRecord> {
  flight.waiters++;
  return new Promise((resolve, reject) => {
    let done = false;
    const leave = (): boolean => {
      if (done) return false;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      flight.waiters--;
      return true;
    };
    const onAbort = () => {
      if (!leave()) return;
      if (flight.waiters === 0) flight.controller.abort();
      reject(new OAuthError('invalid_client', UNUSABLE_DOCUMENT));
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    flight.promise.then(
      (client) => leave() && resolve(client),
      (e: unknown) => leave() && reject(e),
    );
  });
}

function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value as string);
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
