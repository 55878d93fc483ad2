import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseDuration, settings } from '../../src/config/settings.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const UNIT_NAME = 'forgejo-mcp-broker.service';
const UNIT = join(ROOT, 'deploy', 'systemd', UNIT_NAME);
const INSTALLED_APP = '/opt/forgejo-mcp-broker';

const tmp = mkdtempSync(join(tmpdir(), 'broker-systemd-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Every `Key=value` of one section, in order (systemd allows a key several times). */
function section(text: string, name: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      current = head[1] as string;
      continue;
    }
    const eq = line.indexOf('=');
    if (current === name && eq > 0) out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

function values(text: string, key: string): string[] {
  return section(text, 'Service')
    .filter(([k]) => k === key)
    .map(([, v]) => v);
}

function only(text: string, key: string): string {
  const v = values(text, key);
  assert.equal(v.length, 1, `${key} is set exactly once`);
  return v[0] as string;
}

/**
 * The unit with its ExecStart binary pointed at a file that exists here, since `systemd-analyze
 * verify` rejects a missing executable: /usr/bin/node becomes the Node running this test, and the
 * script path /opt/forgejo-mcp-broker/… becomes this checkout. Nothing else changes.
 */
function adaptedUnit(text: string): string {
  const exec = only(text, 'ExecStart');
  const adapted = exec
    .replace(/^\/usr\/bin\/node /, `${process.execPath} `)
    .replace(`${INSTALLED_APP}/`, `${ROOT}/`);
  assert.notEqual(adapted, exec);
  return text.replace(`ExecStart=${exec}`, `ExecStart=${adapted}`);
}

function verify(text: string, dir: string): { status: number | null; output: string } {
  const path = join(dir, UNIT_NAME);
  writeFileSync(path, text);
  const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
  if (r.error)
    throw new Error(`cannot run systemd-analyze (install Debian's systemd package): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

describe('deploy/systemd/forgejo-mcp-broker.service', () => {
  const unit = readFileSync(UNIT, 'utf8');

  it('passes systemd-analyze verify without a single warning', () => {
    const r = verify(adaptedUnit(unit), mkdtempSync(join(tmp, 'ok-')));
    assert.equal(r.output, '');
    assert.equal(r.status, 0);
  });

  it('verify catches what a typo would break (so the check above means something)', () => {
    const broken = adaptedUnit(unit).replace('ProtectSystem=strict', 'ProtectSystem=strictly');
    const r = verify(broken.replace('KillMode=mixed', 'KilMode=mixed'), mkdtempSync(join(tmp, 'bad-')));
    assert.match(r.output, /Failed to parse protect system value/);
    assert.match(r.output, /Unknown key 'KilMode'/);
  });

  it('runs the checkout’s entry point with its settings file and a state directory for the database', () => {
    const [bin, script] = only(unit, 'ExecStart').split(' ');
    assert.equal(bin, '/usr/bin/node');
    assert.equal(script, `${INSTALLED_APP}/src/main/main.ts`);
    assert.ok(existsSync(join(ROOT, (script as string).slice(INSTALLED_APP.length + 1))));
    assert.equal(only(unit, 'WorkingDirectory'), INSTALLED_APP);
    assert.equal(only(unit, 'EnvironmentFile'), '/etc/forgejo-mcp-broker/broker.env');
    assert.equal(only(unit, 'StateDirectory'), 'forgejo-mcp-broker');
    assert.ok(values(unit, 'Environment').includes('BROKER_DB=%S/forgejo-mcp-broker/broker.db'));
    assert.equal(
      only(unit, 'RestartPreventExitStatus'),
      '2',
      'a configuration error (exit 2) is not retried',
    );
  });

  it('is sandboxed: no new privileges, read-only system, the state directory its only writable path', () => {
    const expected: Record<string, string> = {
      DynamicUser: 'yes',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictNamespaces: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
      CapabilityBoundingSet: '',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      SystemCallErrorNumber: 'EPERM',
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(only(unit, k), v, k);
    assert.deepEqual(values(unit, 'SystemCallFilter'), ['@system-service', '~@privileged']);
    // ProtectSystem=strict leaves only StateDirectory= writable; nothing widens that.
    assert.deepEqual(values(unit, 'ReadWritePaths'), []);
    // V8's JIT needs memory that becomes executable after being written: Node aborts under this.
    assert.equal(only(unit, 'MemoryDenyWriteExecute'), 'no');
  });

  it('stops the broker first and its children after, waiting longer than the shutdown grace', () => {
    assert.equal(only(unit, 'KillMode'), 'mixed');
    const grace = parseDuration(settings.shutdownGrace.default as string);
    const timeout = parseDuration(only(unit, 'TimeoutStopSec'));
    assert.ok(timeout >= grace + 10_000, `TimeoutStopSec ${timeout} ms vs grace ${grace} ms`);
  });

  it('rates OK in systemd-analyze security (offline)', () => {
    const path = join(mkdtempSync(join(tmp, 'sec-')), UNIT_NAME);
    writeFileSync(path, adaptedUnit(unit));
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', path], {
      encoding: 'utf8',
    });
    const m = /Overall exposure level for \S+: (\d+\.\d+) (\w+)/.exec(r.stdout);
    assert.ok(m, r.stdout + r.stderr);
    assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]} ${m[2]}`);
  });
});
