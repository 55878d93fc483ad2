// The operator policy and the per-grant mode as pure rules: which tools, prompts and resources a
// connection sees, what a hidden one answers, and how annotations are added.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../../src/policy/catalogue.ts';
import { annotate, filteringSink, notFound, Policy } from '../../src/policy/policy.ts';

const ALL = ['read', 'write', 'destructive'];
const names = (r: Record<string, unknown>, key = 'tools') =>
  (r[key] as { name?: string; uri?: string; uriTemplate?: string }[]).map(
    (t) => t.name ?? t.uri ?? t.uriTemplate,
  );

const toolsResult = {
  tools: [
    { name: 'list_my_repos' },
    { name: 'create_issue' },
    { name: 'delete_repo_hook' },
    { name: 'brand_new_tool' },
  ],
  nextCursor: 'abc',
};

describe('tool policy', () => {
  it('by default a read-and-write grant sees every tool, a read-only grant only reads', () => {
    const p = new Policy({ allow: ALL, deny: [] });
    assert.deepEqual(names(p.forMode('write').filterResult('tools/list', toolsResult)), [
      'list_my_repos',
      'create_issue',
      'delete_repo_hook',
      'brand_new_tool',
    ]);
    assert.deepEqual(names(p.forMode('read').filterResult('tools/list', toolsResult)), ['list_my_repos']);
    assert.equal(p.forMode('read').filterResult('tools/list', toolsResult)['nextCursor'], 'abc');
  });

  it('classes, names and globs allow; deny takes away; unknown tools count as destructive', () => {
    const p = new Policy({ allow: ['read', 'write', 'delete_repo_hook'], deny: ['list_*'] });
    const w = p.forMode('write');
    assert.deepEqual(names(w.filterResult('tools/list', toolsResult)), ['create_issue', 'delete_repo_hook']);
    assert.equal(
      w.allowsTool('brand_new_tool'),
      false,
      'not classified, so destructive, and destructive is not allowed',
    );
    assert.equal(
      new Policy({ allow: ['read', 'write'], deny: [] }).forMode('write').allowsTool('merge_pull_request'),
      false,
    );
    assert.equal(
      new Policy({ allow: ALL, deny: ['destructive'] }).forMode('write').allowsTool('delete_org'),
      false,
    );
    assert.equal(
      new Policy({ allow: ALL, deny: ['destructive'] }).forMode('write').allowsTool('create_issue'),
      true,
    );
    // Globs are whole-name: `issue` alone matches nothing, `?` is one character.
    assert.equal(
      new Policy({ allow: ['issue'], deny: [] }).forMode('write').allowsTool('create_issue'),
      false,
    );
    assert.equal(new Policy({ allow: ['get_?rg'], deny: [] }).forMode('write').allowsTool('get_org'), true);
  });

  it('offers "read and write" only when the operator leaves some tool that changes things', () => {
    assert.equal(new Policy({ allow: ALL, deny: [] }).offersWrite(CATALOGUE.keys()), true);
    assert.equal(new Policy({ allow: ['read'], deny: [] }).offersWrite(CATALOGUE.keys()), false);
    assert.equal(
      new Policy({ allow: ['read', 'create_issue'], deny: [] }).offersWrite(CATALOGUE.keys()),
      true,
    );
  });

  it('a hidden tool, prompt or resource is refused with mcp-go\'s "not found" error', () => {
    const ro = new Policy({ allow: ['read'], deny: ['secret_*', 'forgejo://repo/*/wiki/*'] }).forMode('read');
    assert.deepEqual(ro.refusal('tools/call', { name: 'create_issue' }), {
      code: -32602,
      message: "tool 'create_issue' not found: tool not found",
    });
    assert.equal(ro.refusal('tools/call', { name: 'list_my_repos' }), undefined);
    assert.deepEqual(ro.refusal('prompts/get', { name: 'secret_prompt' }), notFound.prompt('secret_prompt'));
    assert.equal(ro.refusal('prompts/get', { name: 'review' }), undefined);
    const uri = 'forgejo://repo/alice/notes/wiki/Home';
    assert.deepEqual(ro.refusal('resources/read', { uri }), notFound.resource(uri));
    assert.deepEqual(ro.refusal('resources/subscribe', { uri }), notFound.resource(uri));
    assert.equal(ro.refusal('resources/read', { uri: 'forgejo://repo/alice/notes' }), undefined);
    assert.deepEqual(
      ro.refusal('completion/complete', { ref: { type: 'ref/prompt', name: 'secret_x' } }),
      notFound.prompt('secret_x'),
    );
    assert.equal(ro.refusal('ping', {}), undefined);
  });

  it('prompts and resource lists and templates are filtered by the same patterns', () => {
    const c = new Policy({ allow: ALL, deny: ['forgejo://repo/*/wiki/*', 'secret_*'] }).forMode('write');
    assert.deepEqual(
      names(
        c.filterResult('resources/templates/list', {
          resourceTemplates: [
            { uriTemplate: 'forgejo://repo/{owner}/{repo}' },
            { uriTemplate: 'forgejo://repo/{owner}/{repo}/wiki/{pageName}' },
          ],
        }),
        'resourceTemplates',
      ),
      ['forgejo://repo/{owner}/{repo}'],
    );
    assert.deepEqual(
      names(
        c.filterResult('prompts/list', { prompts: [{ name: 'review' }, { name: 'secret_plan' }] }),
        'prompts',
      ),
      ['review'],
    );
    // With no read class allowed, prompts and resources are gone too.
    const none = new Policy({ allow: ['create_issue'], deny: [] }).forMode('write');
    assert.deepEqual(
      names(
        none.filterResult('resources/list', { resources: [{ uri: 'forgejo://owner/alice' }] }),
        'resources',
      ),
      [],
    );
  });

  it('adds the catalogue annotations and title, never overriding what the tool brings itself', () => {
    const plain = annotate({ name: 'delete_org', description: 'x' });
    assert.equal(plain['title'], 'Delete an organization');
    assert.deepEqual(plain['annotations'], {
      title: 'Delete an organization',
      readOnlyHint: false,
      destructiveHint: true,
      idempotentHint: true,
      openWorldHint: false,
    });
    const own = annotate({
      name: 'delete_org',
      title: 'Own title',
      annotations: { destructiveHint: false, title: 'Mine' },
    });
    assert.equal(own['title'], 'Own title');
    assert.deepEqual(own['annotations'], {
      title: 'Mine',
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    });
  });

  it('the filtering sink changes only final list results', () => {
    const ro = new Policy({ allow: ALL, deny: [] }).forMode('read');
    const seen: unknown[] = [];
    const sink = filteringSink(ro, 'tools/list', { send: (m: unknown) => seen.push(m) > 0 });
    sink.send({ jsonrpc: '2.0', method: 'notifications/progress', params: {} }, false);
    sink.send({ jsonrpc: '2.0', id: 1, result: toolsResult }, true);
    assert.deepEqual(seen[0], { jsonrpc: '2.0', method: 'notifications/progress', params: {} });
    assert.deepEqual(names((seen[1] as { result: Record<string, unknown> }).result), ['list_my_repos']);
    const other = { send: () => true };
    assert.equal(filteringSink(ro, 'tools/call', other), other);
  });
});
