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
 * verify` rejects a missing executable: the installed Node becomes the Node running this test, and
 * the script path /opt/forgejo-mcp-broker/… becomes this checkout. Nothing else changes.
 * (test/deploy/install-script.test.ts runs the unit as install.sh really writes it.)
 */
function adaptedUnit(text: string): string {
  const exec = only(text, 'ExecStart');
  const adapted = exec
    .replace(`${INSTALLED_APP}/node/bin/node `, `${process.execPath} `)
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

/** The system calls a SystemCallFilter= line names, its @groups expanded by systemd-analyze. */
function expandSyscalls(line: string): string[] {
  return line.split(/\s+/).flatMap((word) => {
    if (!word.startsWith('@')) return [word];
    const r = spawnSync('systemd-analyze', ['syscall-filter', '--no-pager', word], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#') && l !== word)
      .flatMap((l) => (l.startsWith('@') ? expandSyscalls(l) : [l]));
  });
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

  it('runs the installed entry point with its settings file and a state directory for the database', () => {
    const [bin, script] = only(unit, 'ExecStart').split(' ');
    // install.sh's Node 24, not the system's (/usr/bin/node is Node 18 or 20 on Debian 12).
    assert.equal(bin, `${INSTALLED_APP}/node/bin/node`);
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
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      PrivateMounts: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
      CapabilityBoundingSet: '',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      SystemCallErrorNumber: 'EPERM',
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(only(unit, k), v, k);
    assert.deepEqual(values(unit, 'SystemCallFilter'), [
      '@system-service @mount',
      '~@privileged',
      'pivot_root capset',
    ]);
    // ProtectSystem=strict leaves only StateDirectory= writable; nothing widens that.
    assert.deepEqual(values(unit, 'ReadWritePaths'), []);
    // V8's JIT needs memory that becomes executable after being written: Node aborts under this.
    assert.equal(only(unit, 'MemoryDenyWriteExecute'), 'no');
  });

  it('lets bubblewrap build each child’s sandbox, and insists on it', () => {
    assert.ok(values(unit, 'Environment').includes('BROKER_CHILD_ISOLATION=bwrap'));
    // A user namespace to mount without privileges, a mount namespace, a PID namespace: no more.
    assert.equal(only(unit, 'RestrictNamespaces'), 'user mnt pid');
    // Their read-only /proc/sys and masked /proc/kmsg would forbid the child's own /proc.
    assert.equal(only(unit, 'ProtectKernelTunables'), 'no');
    assert.equal(only(unit, 'ProtectKernelLogs'), 'no');
    assert.deepEqual(values(unit, 'ProcSubset'), [], 'bubblewrap reads /proc/sys/kernel/overflowuid');
    // The filter, evaluated line by line as systemd does, allows the calls bubblewrap makes.
    const allowed = new Set<string>();
    for (const line of values(unit, 'SystemCallFilter')) {
      const deny = line.startsWith('~');
      for (const name of expandSyscalls(line.replace(/^~/, '')))
        if (deny) allowed.delete(name);
        else allowed.add(name);
    }
    for (const call of ['unshare', 'clone', 'mount', 'umount2', 'pivot_root', 'capset', 'prctl', 'execve'])
      assert.ok(allowed.has(call), `${call} is allowed`);
    // What @privileged stood for otherwise stays out.
    for (const call of ['setuid', 'setresuid', 'chroot', 'bpf', 'acct', 'sethostname'])
      assert.ok(!allowed.has(call), `${call} is filtered`);
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
    // 1.5 before the children's sandbox; the namespaces, @mount and the two /proc settings it needs
    // cost 0.9 and buy a child that cannot see another user's token.
    assert.ok(Number(m[1]) <= 2.4, `exposure ${m[1]} ${m[2]}`);
    assert.equal(m[2], 'OK');
  });
});
