// Runs one job in a fresh lean-driver process, bounded in time.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { StdioServer } from '../servers.ts';
import type { Running } from '../targets/target.ts';
import type { LeanJob, LeanResult } from './lean-job.ts';
import type { DriverPlan, DriverRun } from './result.ts';

const SCRIPT = join(import.meta.dirname, 'lean-driver.ts');

export function runLeanJob(job: LeanJob, timeoutMs: number): Promise<LeanResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err = (err + d).slice(-16_384);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lean driver timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`lean driver exited ${code}: ${err.trim().split('\n')[0] ?? ''}`));
        return;
      }
      try {
        resolve(JSON.parse(out) as LeanResult);
      } catch {
        reject(new Error(`lean driver printed no result: ${err}`));
      }
    });
    child.stdin.end(JSON.stringify(job));
  });
}

export async function runLeanDriver(
  running: Running,
  server: StdioServer,
  plan: DriverPlan,
  timeoutMs: number,
): Promise<DriverRun> {
  const target =
    running.kind === 'http'
      ? { kind: 'http' as const, url: running.url, headers: running.headers, pid: running.pid }
      : { kind: 'stdio' as const, command: server.command, args: server.args, env: server.env };
  const result = await runLeanJob(
    {
      mode: 'mcp',
      target,
      tool: server.tool,
      toolArgs: server.toolArgs,
      expectText: server.expectText,
      plan,
    },
    timeoutMs,
  );
  if (result.mode !== 'mcp') throw new Error('lean driver answered another mode');
  return result.run;
}
