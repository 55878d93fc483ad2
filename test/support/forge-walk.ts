// The browser part of an OAuth flow against either Forgejo side: the emulator or a real Gitea. Their
// pages differ in markup (Gitea's forms have no ids), so forms are found by what they post to.
import type { Login } from './scripted-oauth.ts';
import { type FormButton, type HtmlForm, type Page, parseForms, type UserAgent } from './user-agent.ts';

const postsTo = (suffix: string) => (f: HtmlForm) =>
  new URL(f.action || '/', 'http://x').pathname.endsWith(suffix);
export const isLoginForm = postsTo('/user/login');
export const isGrantForm = postsTo('/login/oauth/grant');
const approves = (b: FormButton) => b.name === 'granted' && b.value === 'true';

export type ForgeWalk = { location: URL; sawLogin: boolean; sawGrant: boolean; pages: Page[] };

/**
 * From `start` (an authorize URL of the forge or of the broker), through the broker's consent page,
 * the forge's login form and its grant page, up to the redirect `stop` accepts.
 */
export async function walkForge(
  ua: UserAgent,
  start: string | URL,
  who: Login,
  stop: (u: URL) => boolean,
): Promise<ForgeWalk> {
  const walk: ForgeWalk = { location: new URL('about:blank'), sawLogin: false, sawGrant: false, pages: [] };
  let page = await ua.get(start, { stop });
  for (let step = 0; step < 8; step++) {
    walk.pages.push(page);
    if (page.location !== undefined) {
      walk.location = new URL(page.location);
      return walk;
    }
    if (page.body.includes('id="consent-form"')) {
      page = await ua.submit(page, 'consent-form', { button: 'consent-approve', stop });
    } else if (hasForm(page, isLoginForm)) {
      walk.sawLogin = true;
      page = await ua.submit(page, isLoginForm, {
        fields: { user_name: who.login, password: who.password },
        stop,
      });
    } else if (hasForm(page, isGrantForm)) {
      walk.sawGrant = true;
      page = await ua.submit(page, isGrantForm, { button: approves, stop });
    } else {
      break;
    }
  }
  throw new Error(
    `the walk did not reach the callback: ${page.status} ${page.url}\n${page.body.slice(0, 600)}`,
  );
}

function hasForm(page: Page, match: (f: HtmlForm) => boolean): boolean {
  return parseForms(page.body).some(match);
}
