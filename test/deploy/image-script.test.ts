// deploy/image.sh (run by `make image`) with stand-in engines on PATH: the real engines cannot run
// here, and a test must not build images on a machine that happens to have one.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'deploy', 'image.sh');
const BASH = execFileSync('sh', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();

const tmp = mkdtempSync(join(tmpdir(), 'broker-image-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/**
 * A PATH holding only the tools the script needs plus the given engines. An engine stand-in answers
 * `info` with `infoExit` and records every other call's arguments, one per line, in `<name>.log`.
 */
function pathWith(engines: Record<string, { infoExit: number }>): string {
  const bin = join(tmp, `bin-${++n}`);
  mkdirSync(bin);
  for (const tool of ['git', 'date', 'dirname']) {
    const real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    symlinkSync(real, join(bin, tool));
  }
  for (const [name, { infoExit }] of Object.entries(engines)) {
    const file = join(bin, name);
    writeFileSync(
      file,
      `#!${BASH}\nif [ "$1" = info ]; then exit ${infoExit}; fi\nprintf '%s\\n' "$@" > "${bin}/${name}.log"\n`,
    );
    chmodSync(file, 0o755);
  }
  return bin;
}

function run(bin: string, env: Record<string, string> = {}) {
  return spawnSync(BASH, [SCRIPT], { env: { PATH: bin, ...env }, encoding: 'utf8' });
}

describe('make image (deploy/image.sh)', () => {
  it('says clearly that no image was built when neither docker nor podman is installed', () => {
    const r = run(pathWith({}));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no working container engine, so no image was built/);
    assert.match(r.stderr, /docker: not installed/);
    assert.match(r.stderr, /podman: not installed/);
  });

  it('names an installed engine whose daemon is unreachable (this machine: docker CLI, no engine)', () => {
    const bin = pathWith({ docker: { infoExit: 1 } });
    const r = run(bin);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /docker: installed, but 'docker info' fails/);
    assert.throws(() => readFileSync(join(bin, 'docker.log')), { code: 'ENOENT' }, 'no build attempted');
  });

  it('builds with the first working engine, labelled with this commit and the build time', () => {
    const bin = pathWith({ docker: { infoExit: 1 }, podman: { infoExit: 0 } });
    const r = run(bin, { IMAGE: 'registry.example/broker:test', FORGEJO_MCP_SHA256: 'ab'.repeat(32) });
    assert.equal(r.status, 0, r.stderr);
    const args = readFileSync(join(bin, 'podman.log'), 'utf8').trim().split('\n');
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    assert.deepEqual(args.slice(0, 5), [
      'build',
      '-f',
      join(ROOT, 'Containerfile'),
      '-t',
      'registry.example/broker:test',
    ]);
    assert.equal(args.at(-1), ROOT);
    const buildArgs = args.filter((_, i) => args[i - 1] === '--build-arg');
    const commit = buildArgs.find((a) => a.startsWith('GIT_COMMIT='));
    assert.match(commit ?? '', new RegExp(`^GIT_COMMIT=${head}(-dirty)?$`));
    assert.match(
      buildArgs.find((a) => a.startsWith('BUILD_DATE=')) ?? '',
      /^BUILD_DATE=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    assert.ok(buildArgs.includes(`FORGEJO_MCP_SHA256=${'ab'.repeat(32)}`));
    assert.equal(
      buildArgs.filter((a) => a.startsWith('FORGEJO_MCP_VERSION=')).length,
      0,
      'the Containerfile pin holds',
    );
  });

  it('uses only CONTAINER_ENGINE when set', () => {
    const bin = pathWith({ docker: { infoExit: 0 }, podman: { infoExit: 0 } });
    const r = run(bin, { CONTAINER_ENGINE: 'podman' });
    assert.equal(r.status, 0, r.stderr);
    assert.throws(() => readFileSync(join(bin, 'docker.log')), { code: 'ENOENT' });
    assert.equal(readFileSync(join(bin, 'podman.log'), 'utf8').split('\n')[0], 'build');
  });
});
