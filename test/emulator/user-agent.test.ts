// The scripted browser the emulator's (and the broker's) flow tests drive.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { MAX_ENTRIES, remember } from '../../emulator/forgejo/state.ts';
import { decodeEntities, findForm, parseForms, UserAgent } from '../support/user-agent.ts';

describe('form parsing', () => {
  it('reads inputs, textareas, selects, checkboxes and submit buttons, decoding entities', () => {
    const html = `<form id='f1' method="POST" action="/go?a=1&amp;b=2">
      <input type="hidden" name="h" value="a &quot;quoted&quot; &amp; &#39;x&#39; &#x41;">
      <input name=plain value=unquoted>
      <input type="checkbox" name="c1" value="yes" checked>
      <input type="checkbox" name="c2" value="no">
      <input type="radio" name="r" checked>
      <input name="off" value="x" disabled>
      <textarea name="t">
line &lt;1&gt;</textarea>
      <select name="s"><option value="1">One</option><option value="2" selected>Two</option></select>
      <input type="submit" id="i-submit" name="go" value="Go">
      <button type="button" id="js-only">noop</button>
      <button id="b1" name="granted" value="true">Yes</button>
    </form><form id="other"></form>`;
    const forms = parseForms(html);
    assert.equal(forms.length, 2);
    const f = findForm(html, 'f1')!;
    assert.equal(f.method, 'post');
    assert.equal(f.action, '/go?a=1&b=2');
    assert.deepEqual(f.fields, [
      ['h', `a "quoted" & 'x' A`],
      ['plain', 'unquoted'],
      ['c1', 'yes'],
      ['r', 'on'],
      ['t', 'line <1>'],
      ['s', '2'],
    ]);
    assert.deepEqual(f.buttons, [
      { id: 'i-submit', name: 'go', value: 'Go' },
      { id: 'b1', name: 'granted', value: 'true' },
    ]);
    assert.equal(findForm(html, 'missing'), undefined);
    assert.equal(decodeEntities('&unknown; &#128512;'), '&unknown; 😀');
  });
});

describe('UserAgent', () => {
  it('keeps cookies per host, follows redirects turning POST into GET, stops where told', async () => {
    const seen: { method: string; url: string; cookie?: string; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += String(d);
      });
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, cookie: req.headers.cookie, body });
        if (req.url === '/form') {
          res.writeHead(200, { 'set-cookie': ['sid=abc; Path=/; HttpOnly', 'narrow=1; Path=/only'] });
          res.end('<form id="f" method="post" action="/submit"><input name="a" value="1"></form>');
        } else if (req.url === '/submit') {
          res.writeHead(303, { location: '/landing', 'set-cookie': 'sid=def; Path=/' });
          res.end();
        } else if (req.url === '/landing') {
          res.writeHead(302, { location: 'http://elsewhere.invalid/cb?code=1' });
          res.end();
        } else if (req.url === '/logout') {
          res.writeHead(200, { 'set-cookie': 'sid=; Path=/; Max-Age=0' });
          res.end('bye');
        } else {
          res.writeHead(404);
          res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const ua = new UserAgent();
      const page = await ua.get(`${base}/form`);
      assert.equal(ua.cookie(base, 'sid'), 'abc');
      const done = await ua.submit(page, 'f', {
        fields: { b: 'x y' },
        stop: (u) => u.hostname === 'elsewhere.invalid',
      });
      assert.equal(done.status, 302);
      assert.equal(done.location, 'http://elsewhere.invalid/cb?code=1');
      assert.deepEqual(done.visited, [`${base}/submit`, `${base}/landing`]);
      const post = seen.find((r) => r.url === '/submit')!;
      assert.equal(post.method, 'POST');
      assert.equal(post.body, 'a=1&b=x+y');
      assert.equal(post.cookie, 'sid=abc');
      const landing = seen.find((r) => r.url === '/landing')!;
      assert.equal(landing.method, 'GET');
      assert.equal(landing.cookie, 'sid=def');
      // Cookies are per host, not per port, as in a browser.
      assert.equal(ua.cookie('http://127.0.0.1:1/', 'sid'), 'def');
      await ua.get(`${base}/logout`);
      assert.equal(ua.cookie(base, 'sid'), undefined);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('bounded emulator state', () => {
  it('keeps at most MAX_ENTRIES, dropping the oldest', () => {
    const map = new Map<number, number>();
    for (let i = 0; i < MAX_ENTRIES + 5; i++) remember(map, i, i);
    assert.equal(map.size, MAX_ENTRIES);
    assert.equal(map.has(4), false);
    assert.equal(map.has(5), true);
    assert.equal(map.has(MAX_ENTRIES + 4), true);
  });
});
