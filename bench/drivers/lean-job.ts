// The jobs the lean driver process takes on stdin, and what it answers on stdout.
import type { ConcurrencyRun, DriverPlan, DriverRun } from './result.ts';

export type LeanTarget =
  | { kind: 'http'; url: string; headers: Record<string, string>; pid: number }
  | { kind: 'stdio'; command: string; args: string[]; env: Record<string, string> };

export type LeanJob =
  | {
      mode: 'mcp';
      target: LeanTarget;
      tool: string;
      toolArgs: Record<string, unknown>;
      expectText: string;
      plan: DriverPlan;
    }
  | ({ mode: 'rate'; url: string; pid: number; concurrency: number; durationMs: number } & (
      | { kind: 'get' }
      | { kind: 'refresh'; form: Record<string, string>; refreshTokens: string[] }
      | { kind: 'exchange'; form: Record<string, string>; codes: { code: string; verifier: string }[] }
    ))
  | { mode: 'initialize'; url: string; headers: Record<string, string>[]; keep: boolean }
  | {
      mode: 'scale';
      url: string;
      pid: number;
      users: Record<string, string>[];
      tool: string;
      toolArgs: Record<string, unknown>;
      expectText: string;
      durationMs: number;
    };

export type LeanResult =
  | { mode: 'mcp'; run: DriverRun }
  | { mode: 'rate'; run: ConcurrencyRun }
  | { mode: 'initialize'; samples: number[]; sessionIds: string[]; errors: number; firstError?: string };
