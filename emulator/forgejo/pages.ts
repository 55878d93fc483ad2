// Server-rendered pages, plain enough for a scripted cookie-jar client and real enough for a browser.
// Form and input ids/names are part of the emulator's contract (EMULATOR-API.md).
import type { EmulatorApp } from './emulator.ts';
import { escapeHtml as e } from './http.ts';

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)} - Forgejo emulator</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}
label{display:block;margin:.6rem 0 .2rem}input{width:100%;padding:.4rem}button{margin:.8rem .4rem 0 0;padding:.4rem 1rem}
.error{color:#b00;border:1px solid #b00;padding:.5rem}</style></head>
<body>
${body}
</body>
</html>
`;
}

export function loginPage(csrf: string, redirectTo: string, error?: string): string {
  const action = `/user/login${redirectTo ? `?redirect_to=${encodeURIComponent(redirectTo)}` : ''}`;
  return page(
    'Sign in',
    `<h1>Sign in</h1>
${error ? `<p class="error" id="login-error">${e(error)}</p>` : ''}
<form id="login-form" method="post" action="${e(action)}">
<input type="hidden" name="_csrf" value="${e(csrf)}">
<input type="hidden" name="redirect_to" value="${e(redirectTo)}">
<label for="user_name">Username or email address</label>
<input id="user_name" name="user_name" type="text" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="login-submit" type="submit">Sign in</button>
</form>`,
  );
}

export type ConsentFields = {
  csrf: string;
  clientId: string;
  redirectUri: string;
  state: string;
  scope: string;
  nonce: string;
};

export function consentPage(app: EmulatorApp, login: string, f: ConsentFields): string {
  const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${e(value)}">`;
  return page(
    'Authorize application',
    `<h1>Authorize "${e(app.name)}" to access your account?</h1>
<p>Signed in as <strong id="signed-in-as">${e(login)}</strong>.</p>
<p>You will be redirected to <strong id="redirect-uri">${e(f.redirectUri)}</strong> if you authorize this application.</p>
<p>Requested scope: <code id="scope">${e(f.scope || '(full access)')}</code></p>
<form id="grant-form" method="post" action="/login/oauth/grant">
${hidden('_csrf', f.csrf)}
${hidden('client_id', f.clientId)}
${hidden('state', f.state)}
${hidden('scope', f.scope)}
${hidden('nonce', f.nonce)}
${hidden('redirect_uri', f.redirectUri)}
<button id="grant-approve" type="submit" name="granted" value="true">Authorize application</button>
<button id="grant-deny" type="submit" name="granted" value="false">Cancel</button>
</form>`,
  );
}

export function grantErrorPage(error: string, description: string): string {
  return page(
    'Authorization failed',
    `<h1>Authorization failed</h1>
<p class="error">An error occurred: <span id="error-code">${e(error)}</span>
<span id="error-description">${e(description)}</span></p>`,
  );
}

export function homePage(login: string | undefined): string {
  return page(
    'Forgejo emulator',
    login
      ? `<p>Signed in as <strong id="signed-in-as">${e(login)}</strong>.</p>`
      : `<p>Not signed in. <a href="/user/login">Sign in</a></p>`,
  );
}
