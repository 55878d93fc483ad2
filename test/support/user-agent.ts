// A scripted browser for tests: fetch with a cookie jar, redirects followed by hand (so a test can
// stop at a client's redirect_uri), and HTML forms read and submitted by id with overrides.

export type Page = {
  url: string;
  status: number;
  headers: Headers;
  body: string;
  /** Every URL visited on the way, the first request included. */
  visited: string[];
  /** Set when following stopped at a redirect the `stop` predicate refused to follow. */
  location?: string;
};

export type FormButton = { id?: string; name?: string; value: string };
export type HtmlForm = {
  id?: string;
  action: string;
  method: string;
  fields: [string, string][];
  buttons: FormButton[];
};

type Cookie = { name: string; value: string; path: string };

export type FollowOptions = {
  /** Return instead of following a redirect to this URL (e.g. an OAuth client's redirect_uri). */
  stop?: (url: URL) => boolean;
  maxRedirects?: number;
};

export class UserAgent {
  // Cookies are per host, not per port (RFC 6265 §8.5), as in a real browser.
  readonly #jar = new Map<string, Cookie[]>();

  cookie(url: string | URL, name: string): string | undefined {
    return this.#jar.get(new URL(url).hostname)?.find((c) => c.name === name)?.value;
  }

  clearCookies(): void {
    this.#jar.clear();
  }

  /** One request, no redirect following; cookies sent and stored. */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    const cookies = (this.#jar.get(target.hostname) ?? []).filter((c) => target.pathname.startsWith(c.path));
    if (cookies.length > 0 && !headers.has('cookie')) {
      headers.set('cookie', cookies.map((c) => `${c.name}=${c.value}`).join('; '));
    }
    const res = await fetch(target, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) this.#store(target, line);
    return res;
  }

  /** A request, then its redirects (3xx with Location), until a page or a stopped redirect. */
  async follow(url: string | URL, init: RequestInit = {}, opts: FollowOptions = {}): Promise<Page> {
    let current = new URL(url);
    let request = init;
    const visited: string[] = [];
    for (let hop = 0; hop <= (opts.maxRedirects ?? 20); hop++) {
      visited.push(current.toString());
      const res = await this.fetch(current, request);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.body?.cancel();
        const next = new URL(location, current);
        if (opts.stop?.(next)) {
          return {
            url: current.toString(),
            status: res.status,
            headers: res.headers,
            body: '',
            visited,
            location: next.toString(),
          };
        }
        // 307/308 repeat the request; 301/302/303 become a GET, as browsers do.
        if (res.status !== 307 && res.status !== 308)
          request = { headers: stripBodyHeaders(request.headers) };
        current = next;
        continue;
      }
      return {
        url: current.toString(),
        status: res.status,
        headers: res.headers,
        body: await res.text(),
        visited,
      };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  get(url: string | URL, opts?: FollowOptions): Promise<Page> {
    return this.follow(url, {}, opts);
  }

  /**
   * Submits the form with this id (or the first one the predicate accepts) on the page, as a browser
   * would when `button` (an element id, or a predicate) is clicked: its fields, `fields` overriding or
   * adding values, the clicked button's name=value.
   */
  async submit(
    page: Page,
    formId: string | ((f: HtmlForm) => boolean),
    options: {
      fields?: Record<string, string>;
      button?: string | ((b: FormButton) => boolean);
    } & FollowOptions = {},
  ): Promise<Page> {
    const form =
      typeof formId === 'string' ? findForm(page.body, formId) : parseForms(page.body).find(formId);
    if (!form)
      throw new Error(`no form ${typeof formId === 'string' ? `#${formId}` : 'matching'} on ${page.url}`);
    const params = new URLSearchParams();
    for (const [k, v] of form.fields) if (!(options.fields && k in options.fields)) params.append(k, v);
    for (const [k, v] of Object.entries(options.fields ?? {})) params.append(k, v);
    if (options.button !== undefined) {
      const wanted = options.button;
      const button = form.buttons.find((b) => (typeof wanted === 'string' ? b.id === wanted : wanted(b)));
      if (!button) throw new Error(`no such button in form ${form.id ?? form.action}`);
      if (button.name) params.append(button.name, button.value);
    }
    const action = new URL(form.action || page.url, page.url);
    const follow = { stop: options.stop, maxRedirects: options.maxRedirects };
    if (form.method === 'get') {
      action.search = params.toString();
      return this.follow(action, {}, follow);
    }
    return this.follow(
      action,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(page.url).origin },
        body: params.toString(),
      },
      follow,
    );
  }

  #store(url: URL, line: string): void {
    const [pair = '', ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = '/';
    let expired = false;
    for (const attr of attrs) {
      const [k = '', v = ''] = attr.split('=').map((s) => s.trim());
      const key = k.toLowerCase();
      if (key === 'path' && v.startsWith('/')) path = v;
      if (key === 'max-age' && Number(v) <= 0) expired = true;
      if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
    }
    const list = (this.#jar.get(url.hostname) ?? []).filter((c) => !(c.name === name && c.path === path));
    if (!expired) list.push({ name, value, path });
    this.#jar.set(url.hostname, list);
  }
}

function stripBodyHeaders(headers: RequestInit['headers']): Headers {
  const h = new Headers(headers);
  for (const name of ['content-type', 'content-length', 'origin']) h.delete(name);
  return h;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ent: string) => {
    if (ent[0] === '#') {
      const code =
        ent[1] === 'x' || ent[1] === 'X' ? Number.parseInt(ent.slice(2), 16) : Number(ent.slice(1));
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[ent.toLowerCase()] ?? whole;
  });
}

function attributes(tag: string): Map<string, string> {
  const out = new Map<string, string>();
  const inner = tag.replace(/^<\s*[a-z]+/i, '').replace(/\/?>$/, '');
  for (const m of inner.matchAll(/([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    const name = m[1]!.toLowerCase();
    if (!out.has(name)) out.set(name, decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return out;
}

/** Every form of an HTML page, with its successful controls (inputs, textareas, selects, buttons). */
export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const m of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form\s*>/gi)) {
    const open = /^<form\b[^>]*>/i.exec(m[0])![0];
    const a = attributes(open);
    const content = m[1] ?? '';
    const form: HtmlForm = {
      id: a.get('id'),
      action: a.get('action') ?? '',
      method: (a.get('method') ?? 'get').toLowerCase(),
      fields: [],
      buttons: [],
    };
    for (const el of content.matchAll(/<(input|button|textarea|select)\b[^>]*>([\s\S]*?<\/\1\s*>)?/gi)) {
      const kind = el[1]!.toLowerCase();
      const attrs = attributes(/^<[^>]*>/.exec(el[0])![0]);
      const name = attrs.get('name');
      if (attrs.has('disabled')) continue;
      if (kind === 'button' || (kind === 'input' && ['submit', 'image'].includes(attrs.get('type') ?? ''))) {
        if ((attrs.get('type') ?? 'submit').toLowerCase() === 'submit' || kind === 'input') {
          form.buttons.push({ id: attrs.get('id'), name, value: attrs.get('value') ?? '' });
        }
        continue;
      }
      if (!name) continue;
      if (kind === 'input') {
        const type = (attrs.get('type') ?? 'text').toLowerCase();
        if (type === 'button' || type === 'reset' || type === 'file') continue;
        if ((type === 'checkbox' || type === 'radio') && !attrs.has('checked')) continue;
        form.fields.push([name, attrs.get('value') ?? (type === 'checkbox' || type === 'radio' ? 'on' : '')]);
      } else if (kind === 'textarea') {
        const body = (el[2] ?? '').replace(/<\/textarea\s*>$/i, '');
        form.fields.push([name, decodeEntities(body.replace(/^\r?\n/, ''))]);
      } else {
        const options = [...(el[2] ?? '').matchAll(/<option\b[^>]*>([^<]*)/gi)].map((o) => {
          const oa = attributes(/^<option\b[^>]*>/i.exec(o[0])![0]);
          return { value: oa.get('value') ?? decodeEntities(o[1]!.trim()), selected: oa.has('selected') };
        });
        const chosen = options.find((o) => o.selected) ?? options[0];
        if (chosen) form.fields.push([name, chosen.value]);
      }
    }
    forms.push(form);
  }
  return forms;
}

export function findForm(html: string, id: string): HtmlForm | undefined {
  return parseForms(html).find((f) => f.id === id);
}

/** The value of a form field, for asserting what a page carries. */
export function formField(form: HtmlForm, name: string): string | undefined {
  return form.fields.find(([k]) => k === name)?.[1];
}
