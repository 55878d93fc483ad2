// The audit trail: one structured event per security-relevant action, for the operator's question
// "who did what, through which app, as whom". Events go to the log with `"audit": true` and, as a
// setting, to an append-only JSON-lines file of their own. Never a secret: tool arguments are off
// by default, and at most their names or SHA-256 hashes of their values.
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Logger } from '../log/log.ts';

export type AuditEvent =
  | { event: 'sign_in'; login: string; userId: number; clientId: string; clientName: string }
  | { event: 'sign_in_refused'; login?: string; clientId: string; reason: string }
  | { event: 'consent'; decision: 'granted' | 'denied'; clientId: string; clientName: string; mode?: string }
  | {
      event: 'token_issued';
      grantType: 'authorization_code' | 'refresh_token';
      login: string;
      clientId: string;
      grantId: string;
    }
  | {
      event: 'refresh_reuse_detected' | 'code_replay_detected';
      clientId: string;
      grantId?: string;
      login?: string;
    }
  | { event: 'token_revoked'; kind: 'access' | 'refresh'; clientId: string }
  | {
      event: 'grant_revoked';
      by: 'user' | 'operator' | 'forgejo' | 'client';
      grantId?: string;
      userId?: number;
      login?: string;
      clientId?: string;
    }
  | {
      event: 'tool_call';
      login: string;
      userId: number;
      clientId: string;
      clientName: string;
      tool: string;
      outcome: string;
      ms: number;
      arguments?: Record<string, string> | string[];
    }
  | { event: 'policy_refused'; login: string; clientId: string; tool: string; reason: string };

export type AuditArguments = 'off' | 'names' | 'hashes';

export class Audit {
  readonly #log: Logger;
  readonly #file: WriteStream | undefined;
  readonly #arguments: AuditArguments;

  constructor(opts: { log: Logger; file?: string; arguments?: AuditArguments }) {
    this.#log = opts.log;
    this.#arguments = opts.arguments ?? 'off';
    if (opts.file) {
      this.#file = createWriteStream(opts.file, { flags: 'a', mode: 0o600 });
      this.#file.on('error', (e) =>
        this.#log.error({ err: { message: e.message }, auditFile: opts.file }, 'cannot write the audit file'),
      );
    }
  }

  record(e: AuditEvent): void {
    this.#log.info({ audit: true, ...e }, `audit: ${e.event}`);
    this.#file?.write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
  }

  /** What the tool call's event says of its arguments, per BROKER_AUDIT_ARGUMENTS. */
  describeArguments(args: unknown): Record<string, string> | string[] | undefined {
    if (this.#arguments === 'off' || typeof args !== 'object' || args === null || Array.isArray(args))
      return undefined;
    const entries = Object.entries(args as Record<string, unknown>);
    if (this.#arguments === 'names') return entries.map(([k]) => k);
    return Object.fromEntries(
      entries.map(([k, v]) => [
        k,
        createHash('sha256')
          .update(JSON.stringify(v) ?? '')
          .digest('hex'),
      ]),
    );
  }

  async close(): Promise<void> {
    const f = this.#file;
    if (f) await new Promise<void>((resolve) => f.end(resolve));
  }
}
