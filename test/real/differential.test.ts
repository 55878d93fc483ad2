// The emulator kept honest: the same OAuth and API requests go to the emulator and to a real Gitea
// (the real Forgejo cannot be built here), and every observation must be equal, except exactly the
// Gitea-versus-Forgejo differences written down in emulator/README.md. A new difference, or a
// documented one that no longer shows, fails this test.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { emulatorForge, type Forge, giteaForge } from './forges.ts';
import { type Observations, observe } from './observe.ts';

const README = join(import.meta.dirname, '..', '..', 'emulator', 'README.md');
const HEADING = '## Where Gitea differs from Forgejo';

type Documented = { request: string; forgejo: string; gitea: string };

/** The table under HEADING: request, what Forgejo (and so the emulator) answers, what Gitea answers. */
export function documentedDifferences(markdown: string): Documented[] {
  const start = markdown.indexOf(HEADING);
  assert.ok(start >= 0, `emulator/README.md has a "${HEADING}" section`);
  const section = markdown.slice(start + HEADING.length).split(/\n## /)[0] ?? '';
  const rows: Documented[] = [];
  // The first table of the section only: the one after it lists behaviours, not requests.
  const lines = section.split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const end = lines.findIndex((l, i) => i > first && !l.startsWith('|'));
  for (const line of lines.slice(first, end < 0 ? undefined : end)) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || !cells[2]?.startsWith('`')) continue;
    const code = (c: string) => c.replace(/^`|`$/g, '');
    rows.push({
      request: cells[1] as string,
      forgejo: code(cells[2] as string),
      gitea: code(cells[3] as string),
    });
  }
  return rows;
}

describe('differential: the emulator against a real Gitea', () => {
  let emulator: Forge;
  let gitea: Forge;
  let onEmulator: Observations;
  let onGitea: Observations;

  before(async () => {
    [emulator, gitea] = await Promise.all([emulatorForge(), giteaForge()]);
    onEmulator = await observe(emulator);
    onGitea = await observe(gitea);
  });
  after(async () => {
    await Promise.all([emulator?.close(), gitea?.close()]);
  });

  it('both sides answered every request', () => {
    assert.deepEqual([...onGitea.keys()], [...onEmulator.keys()]);
    assert.ok(onEmulator.size >= 30, `${onEmulator.size} observations`);
  });

  it('every observation is equal, or differs exactly as emulator/README.md documents', () => {
    const documented = documentedDifferences(readFileSync(README, 'utf8'));
    const byRequest = new Map(documented.map((d) => [d.request, d]));
    assert.equal(byRequest.size, documented.length, 'each request is documented once');
    const problems: string[] = [];
    for (const [request, emulated] of onEmulator) {
      const real = onGitea.get(request);
      const doc = byRequest.get(request);
      if (doc === undefined) {
        if (real !== emulated)
          problems.push(`undocumented difference: ${request}\n  emulator: ${emulated}\n  gitea:    ${real}`);
        continue;
      }
      if (emulated !== doc.forgejo)
        problems.push(`${request}: emulator answers ${emulated}, README says ${doc.forgejo}`);
      if (real !== doc.gitea) problems.push(`${request}: Gitea answers ${real}, README says ${doc.gitea}`);
    }
    for (const d of documented)
      if (!onEmulator.has(d.request)) problems.push(`README documents an unknown request: ${d.request}`);
    assert.deepEqual(problems, []);
  });

  it('the token error table holds on the real server where Gitea and Forgejo agree', () => {
    // Pinned rows of facts/forgejo.md that both share, so a change on either side is seen here too.
    const expectations: Record<string, string> = {
      'code grant: unknown code': '400 unauthorized_client: client is not authorized',
      'code grant: code used twice': '400 unauthorized_client: client is not authorized',
      'code grant: wrong verifier': '400 unauthorized_client: failed PKCE code challenge',
      'code grant: wrong secret': '400 unauthorized_client: invalid client secret',
      'refresh grant: wrong secret': '400 invalid_client: invalid client secret',
      'code grant: unknown client': "400 invalid_client: cannot load client with client id: 'no-such-client'",
      'refresh grant: unparseable token': '400 unauthorized_client: unable to parse refresh token',
      'refresh after the user revoked the app': '400 invalid_grant: grant does not exist',
      'refresh grant: token already used': '400 unauthorized_client: token was already used',
      'unsupported grant_type':
        '400 unsupported_grant_type: Only refresh_token or authorization_code grant type is supported',
      'refresh token of the first login after the second login':
        '400 unauthorized_client: token was already used',
    };
    for (const [request, line] of Object.entries(expectations)) {
      assert.equal(onGitea.get(request), line, `Gitea: ${request}`);
      assert.equal(onEmulator.get(request), line, `emulator: ${request}`);
    }
  });
});
