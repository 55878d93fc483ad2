// The image cannot be built on these machines (no container engine), so this file checks what can
// be checked without one: two linters, the instructions that matter, the build context, and the
// image's application layout run for real from the same files and commands as the Containerfile.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';

const ROOT = join(import.meta.dirname, '..', '..');
const CONTAINERFILE = join(ROOT, 'Containerfile');
const text = readFileSync(CONTAINERFILE, 'utf8');
const dockerfile = DockerfileParser.parse(text);

const tmp = mkdtempSync(join(tmpdir(), 'broker-containerfile-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Instructions grouped by build stage, in order; the last stage is the image. */
function stages(): Instruction[][] {
  const out: Instruction[][] = [];
  for (const i of dockerfile.getInstructions()) {
    if (i.getKeyword() === 'FROM') out.push([]);
    out.at(-1)?.push(i);
  }
  return out;
}
const finalStage = stages().at(-1) as Instruction[];

function finalOnly(keyword: string): Instruction {
  const found = finalStage.filter((i) => i.getKeyword() === keyword);
  assert.equal(found.length, 1, `one ${keyword} in the final stage`);
  return found[0] as Instruction;
}

function argDefault(stage: Instruction[], name: string): string | undefined {
  for (const i of stage) {
    if (i.getKeyword() !== 'ARG') continue;
    const [k, ...v] = i.getArgumentsContent()?.split('=') ?? [];
    if (k === name) return v.join('=');
  }
  return undefined;
}

/** The JSON array of an exec-form instruction (ENTRYPOINT, HEALTHCHECK CMD). */
function execForm(i: Instruction): string[] {
  const content = i.getArgumentsContent() ?? '';
  return JSON.parse(content.replace(/^CMD\s+/, '')) as string[];
}

/** Runs `main` (the copied app's entry point) on a free loopback port; resolves on its startup line. */
function startAppBroker(
  main: string,
  env: Record<string, string>,
): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [main], {
    cwd: tmp,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', BROKER_LISTEN: '127.0.0.1:0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const line = err.split('\n').find((l) => l.includes('"msg":"broker started"'));
      if (line) {
        clearTimeout(timer);
        resolve({ proc, url: `http://${(JSON.parse(line) as { address: string }).address}` });
      }
    });
    proc.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`the broker did not start from the image layout:\n${err}`));
    });
  });
}

function lint(path: string): { status: number | null; out: string } {
  const bin = join(ROOT, 'node_modules', 'dockerfilelint', 'bin', 'dockerfilelint');
  const r = spawnSync(process.execPath, [bin, path], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('Containerfile: linters', () => {
  it('passes dockerfilelint', () => {
    const r = lint(CONTAINERFILE);
    assert.match(r.out, /Issues: None found/);
    assert.equal(r.status, 0);
  });

  it('dockerfilelint does flag a careless file (so passing means something)', () => {
    const careless = text.replace(
      'apt-get install -y --no-install-recommends bubblewrap ca-certificates tini \\\n && rm -rf /var/lib/apt/lists/*',
      'apt-get install bubblewrap ca-certificates tini',
    );
    assert.notEqual(careless, text);
    const path = join(tmp, 'Careless.Containerfile');
    writeFileSync(path, careless);
    const r = lint(path);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /Use of apt-get update should be paired with rm -rf/);
    assert.match(r.out, /should include a `-y` flag/);
  });

  it('passes dockerfile-utils validation (the parser behind VS Code’s Dockerfile support)', () => {
    assert.deepEqual(
      validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`),
      [],
    );
  });
});

describe('Containerfile: what the image is', () => {
  it('is multi-stage on the official Node 24 image', () => {
    const froms = dockerfile.getFROMs();
    assert.ok(froms.length >= 2);
    const last = froms.at(-1)!;
    assert.equal(last.getImageName(), 'node');
    assert.match(last.getImageTag() ?? '', /^24(-|$)/);
    // Only official images: node, debian.
    for (const f of froms)
      assert.ok(['node', 'debian'].includes(f.getImageName() ?? ''), f.getImageName() ?? '');
  });

  it('runs as a non-root user, by number', () => {
    const user = finalOnly('USER').getArgumentsContent() ?? '';
    assert.match(user, /^[1-9]\d*(:[1-9]\d*)?$/);
    const users = finalStage.map((i) => i.getKeyword());
    assert.ok(
      users.lastIndexOf('USER') < users.indexOf('HEALTHCHECK'),
      'USER before the runtime instructions',
    );
  });

  it('labels created and revision from build arguments, and writes them to /etc/build-info', () => {
    const label = finalOnly('LABEL').getArgumentsContent() ?? '';
    assert.match(label, /org\.opencontainers\.image\.created="\$\{BUILD_DATE\}"/);
    assert.match(label, /org\.opencontainers\.image\.revision="\$\{GIT_COMMIT\}"/);
    assert.notEqual(argDefault(finalStage, 'BUILD_DATE'), undefined);
    assert.notEqual(argDefault(finalStage, 'GIT_COMMIT'), undefined);
    assert.ok(
      finalStage.some(
        (i) => i.getKeyword() === 'RUN' && /> \/etc\/build-info$/.test(i.getArgumentsContent() ?? ''),
      ),
    );
  });

  it('installs forgejo-mcp at a pinned version, checked against checksums, with no invented digest', () => {
    const stage = stages().find((s) =>
      s.some((i) => /forgejo-mcp version/.test(i.getArgumentsContent() ?? '')),
    );
    assert.ok(stage, 'a stage that installs and runs forgejo-mcp');
    assert.equal(argDefault(stage, 'FORGEJO_MCP_VERSION'), '2.34.1');
    assert.equal(argDefault(stage, 'FORGEJO_MCP_SHA256'), '', 'a checksum is pinned only by whoever builds');
    const run = stage.map((i) => i.getArgumentsContent() ?? '').join('\n');
    assert.match(run, /sha256sum -c archive\.sha256/);
    assert.match(run, /\$FORGEJO_MCP_SHA256 {2}\$archive" \| sha256sum -c -/);
    const copy = finalStage.find(
      (i) => i.getKeyword() === 'COPY' && /forgejo-mcp/.test(i.getArgumentsContent() ?? ''),
    );
    assert.equal((copy as Copy | undefined)?.getFromFlag()?.getValue(), 'forgejo-mcp');
    assert.equal(copy?.getArgumentsContent(), '/usr/local/bin/forgejo-mcp /usr/local/bin/forgejo-mcp');
  });

  it('installs bubblewrap for the children’s sandbox', () => {
    const installs = finalStage
      .filter((i) => i.getKeyword() === 'RUN')
      .map((i) => i.getArgumentsContent() ?? '')
      .filter((c) => c.includes('apt-get install'));
    assert.equal(installs.length, 1);
    assert.match(installs[0] as string, /--no-install-recommends bubblewrap ca-certificates tini\b/);
  });

  it('keeps the database on a volume, listens on all interfaces, and starts the broker under an init', () => {
    const env = Object.fromEntries(
      finalOnly('ENV')
        .getArgumentsContent()!
        .split(/\s+/)
        .map((kv) => kv.split('=') as [string, string]),
    );
    assert.equal(env['BROKER_DB'], '/var/lib/forgejo-mcp-broker/broker.db');
    assert.equal(env['BROKER_LISTEN'], '0.0.0.0:8080');
    assert.deepEqual(execForm(finalOnly('VOLUME')), ['/var/lib/forgejo-mcp-broker']);
    assert.deepEqual(execForm(finalOnly('ENTRYPOINT')), ['/usr/bin/tini', '--', 'node', 'src/main/main.ts']);
  });
});

describe('Containerfile: build context', () => {
  const copies = finalStage
    .concat(stages()[0] ?? [])
    .filter((i): i is Copy => i.getKeyword() === 'COPY' && !(i as Copy).getFromFlag());
  const sources = copies.flatMap((c) => c.getArgumentsContent()!.split(/\s+/).slice(0, -1));

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    assert.deepEqual([...new Set(sources)].sort(), ['package-lock.json', 'package.json', 'src']);
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    // An allowlist: everything out, then exactly what COPY needs back in.
    assert.equal(ignore[0], '*');
    for (const s of sources) {
      assert.ok(existsSync(join(ROOT, s)), s);
      assert.ok(ignore.includes(`!${s}`), `.dockerignore re-includes ${s}`);
    }
  });
});

describe('Containerfile: the image’s application, run from its own files and commands', () => {
  // /app as the image lays it out: the COPY sources, then the deps stage's `npm ci` (its exact
  // flags, less the cache clean that would empty this machine's npm cache).
  const app = join(tmp, 'app');
  const info = join(tmp, 'build-info');
  let broker: { proc: ChildProcess; url: string };

  before(async () => {
    mkdirSync(app);
    for (const s of ['package.json', 'package-lock.json', 'src'])
      cpSync(join(ROOT, s), join(app, s), { recursive: true });
    const npmCi = (stages()[0] ?? [])
      .map((i) => i.getArgumentsContent() ?? '')
      .find((c) => c.startsWith('npm ci'))
      ?.split('&&')[0]
      ?.trim();
    assert.ok(npmCi?.includes('--omit=dev'), npmCi);
    execFileSync('sh', ['-c', `${npmCi} --prefer-offline --loglevel=error`], { cwd: app, stdio: 'pipe' });
    // The RUN that writes /etc/build-info, run by sh with the build arguments in its environment.
    const write = finalStage
      .map((i) => i.getArgumentsContent() ?? '')
      .find((c) => c.endsWith('> /etc/build-info'));
    assert.ok(write);
    execFileSync('sh', ['-c', write.replace('/etc/build-info', '"$BUILD_INFO_PATH"')], {
      env: {
        PATH: process.env['PATH'],
        GIT_COMMIT: 'c0ffee1234',
        BUILD_DATE: '2026-11-23T22:00:00Z',
        BUILD_INFO_PATH: info,
      },
    });
    broker = await startAppBroker(join(app, 'src', 'main', 'main.ts'), {
      BROKER_PUBLIC_URL: 'http://127.0.0.1:8080',
      FORGEJO_URL: 'http://127.0.0.1:3000',
      FORGEJO_CLIENT_ID: 'broker-app',
      FORGEJO_CLIENT_SECRET: 'image-layout-secret',
      BROKER_DB: join(tmp, 'state', 'broker.db'),
      BROKER_BUILD_INFO: info,
      // The image installs forgejo-mcp on PATH; here any executable will do, as no MCP call is made.
      BROKER_CHILD_COMMAND: `"${process.execPath}"`,
      NODE_ENV: 'production',
    });
  });
  after(async () => {
    if (broker && broker.proc.exitCode === null) {
      const exited = once(broker.proc, 'exit');
      broker.proc.kill('SIGTERM');
      await exited;
    }
  });

  it('has every runtime dependency and no development-only package in node_modules', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    for (const d of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(app, 'node_modules', d)), d);
    // npm marks a package dev when no runtime dependency needs it: those stay out of the image.
    const devOnly = Object.entries(lock.packages)
      .filter(([path, p]) => path.startsWith('node_modules/') && p.dev === true)
      .map(([path]) => path);
    assert.ok(devOnly.length > 0);
    for (const path of devOnly) assert.equal(existsSync(join(app, path)), false, path);
  });

  it('starts with runtime dependencies only and reports the commit from the build-info file', async () => {
    const res = await fetch(`${broker.url}/healthz`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; git: string };
    assert.equal(body.status, 'ok');
    assert.equal(body.git, 'c0ffee1234');
  });

  it('the HEALTHCHECK command passes against a live broker and fails when none listens', async () => {
    const cmd = execForm(finalOnly('HEALTHCHECK'));
    assert.equal(cmd[0], 'node');
    const run = (listen: string) =>
      new Promise<number | null>((resolve) => {
        const p = spawn(process.execPath, cmd.slice(1), { env: { BROKER_LISTEN: listen }, stdio: 'ignore' });
        p.once('exit', (code) => resolve(code));
      });
    const port = new URL(broker.url).port;
    assert.equal(await run(`0.0.0.0:${port}`), 0);
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    assert.equal(await run(`0.0.0.0:${closed}`), 1);
  });
});
