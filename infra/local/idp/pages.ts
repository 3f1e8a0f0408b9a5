/**
 * HTML of the local identity provider: the login form of the authorization-code flow, a
 * start page that begins the flow as a browser SPA would (PKCE generated in the page), and
 * the callback page that finishes it. Everything user-supplied is escaped.
 */
import { escapeHtml } from './http.js';

const STYLE = `<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.5rem 0}input{width:100%;padding:.4rem}button{padding:.5rem 1rem;margin-top:.5rem}
.err{color:#b00}pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:.5rem}</style>`;

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>${STYLE}</head><body>${body}</body></html>`;
}

export function loginPage(opts: { uid: string; clientName: string; email?: string; error?: string }): string {
  const action = `/interaction/${encodeURIComponent(opts.uid)}/login`;
  return page(
    'Sign in',
    `<h1>Sign in to ${escapeHtml(opts.clientName)}</h1>
${opts.error ? `<p class="err" role="alert">${escapeHtml(opts.error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}" autocomplete="off">
<label>Email <input type="email" name="email" required autofocus value="${escapeHtml(opts.email ?? '')}"></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(encodeURIComponent(opts.uid))}/abort"><button type="submit">Cancel</button></form>`,
  );
}

/**
 * Browser script (after `const cfg = { clientId, redirectUri, audience, issuer }`): the button
 * `buttonId` starts authorization code + PKCE, keeping the verifier in sessionStorage under
 * `pkce:<state>` for the page at the redirect URI.
 */
export function pkceSignInScript(buttonId: string): string {
  return `const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
document.getElementById(${JSON.stringify(buttonId)}).onclick = async () => {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem('pkce:' + state, verifier);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const u = new URL('authorize', cfg.issuer);
  u.search = new URLSearchParams({ client_id: cfg.clientId, redirect_uri: cfg.redirectUri, response_type: 'code',
    scope: 'openid profile email', audience: cfg.audience, state, code_challenge: challenge, code_challenge_method: 'S256' });
  location.assign(u);
};`;
}

/** Starts the authorization-code + PKCE flow from the browser, as the SPA would. */
export function startPage(opts: { clientId: string; redirectUri: string; audience: string; issuer: string }): string {
  const cfg = JSON.stringify(opts).replace(/</g, '\\u003c');
  return page(
    'Latchkey local IdP',
    `<h1>Latchkey local identity provider</h1>
<p>Issuer <code>${escapeHtml(opts.issuer)}</code>, API <code>${escapeHtml(opts.audience)}</code>.</p>
<p><button id="go">Sign in with the local SPA client</button></p>
<script>
const cfg = ${cfg};
${pkceSignInScript('go')}
</script>`,
  );
}

/** Shows the code; when the verifier from startPage is at hand, exchanges it and shows the token. */
export function callbackPage(opts: { clientId: string; redirectUri: string; issuer: string }): string {
  const cfg = JSON.stringify(opts).replace(/</g, '\\u003c');
  return page(
    'Callback',
    `<h1>Authorization response</h1>
<pre id="out">working…</pre>
<script>
const cfg = ${cfg};
const out = document.getElementById('out');
const q = new URLSearchParams(location.search);
(async () => {
  if (q.get('error')) { out.textContent = 'error: ' + q.get('error') + '\\n' + (q.get('error_description') || ''); return; }
  const code = q.get('code'), state = q.get('state');
  const verifier = state && sessionStorage.getItem('pkce:' + state);
  if (!verifier) { out.textContent = 'code: ' + code + '\\n(no PKCE verifier in this browser session; exchange it yourself)'; return; }
  sessionStorage.removeItem('pkce:' + state);
  const res = await fetch(new URL('oauth/token', cfg.issuer), { method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: cfg.redirectUri, client_id: cfg.clientId, code_verifier: verifier }) });
  const body = await res.json();
  if (!res.ok) { out.textContent = 'token error: ' + JSON.stringify(body, null, 2); return; }
  const claims = JSON.parse(atob(body.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  out.textContent = 'access_token:\\n' + body.access_token + '\\n\\nclaims:\\n' + JSON.stringify(claims, null, 2);
})().catch((e) => { out.textContent = String(e); });
</script>`,
  );
}
