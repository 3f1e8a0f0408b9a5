/**
 * A small browser SPA on its own origin, served by the local stack: it signs a user in at the
 * local identity provider with authorization code + PKCE, then calls the API's `/me` and
 * `/users` across origins (CORS) and shows the answers. `npm start` prints its URL; the
 * browser test drives it in headless Chromium.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pkceSignInScript } from './idp/pages.js';

export interface SpaConfig {
  /** Base URL of the API stage, e.g. `http://127.0.0.1:3000/v1`. */
  api: string;
  /** The identity provider's issuer (its `authorize` and `oauth/token` are under it). */
  issuer: string;
  clientId: string;
  audience: string;
}

export interface SpaServer {
  /** `http://localhost:<port>`: the SPA's origin, and its redirect URI with a final `/`. */
  origin: string;
  port: number;
  /** Sets what the page talks to; until then the page says it is not configured. */
  configure(config: SpaConfig): void;
  close(): Promise<void>;
}

/** The page; everything it needs is in `config`, escaped for a `<script>` element. */
export function spaPage(config: SpaConfig, redirectUri: string): string {
  const cfg = JSON.stringify({ ...config, redirectUri }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Latchkey SPA</title>
<style>body{font:15px system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:.5rem}</style>
</head><body>
<h1>Latchkey SPA</h1>
<p>This page runs on its own origin and calls the API at <code id="api"></code> across origins.</p>
<p><button id="login">Sign in</button> <span id="status">signed out</span></p>
<h2>GET /me</h2><pre id="me"></pre>
<h2>GET /users</h2><pre id="users"></pre>
<script>
const cfg = ${cfg};
const $ = (id) => document.getElementById(id);
$('api').textContent = cfg.api;
${pkceSignInScript('login')}
async function show(id, path, token) {
  const res = await fetch(cfg.api + path, { headers: { Authorization: 'Bearer ' + token } });
  $(id).textContent = res.status + ' ' + (await res.text());
}
async function callback() {
  const q = new URLSearchParams(location.search);
  const code = q.get('code'), state = q.get('state');
  if (q.get('error')) throw new Error('login failed: ' + q.get('error'));
  if (!code) return;
  const verifier = state && sessionStorage.getItem('pkce:' + state);
  if (!verifier) throw new Error('no PKCE verifier for this state');
  sessionStorage.removeItem('pkce:' + state);
  history.replaceState(null, '', location.pathname);
  $('status').textContent = 'exchanging the code';
  const tok = await fetch(new URL('oauth/token', cfg.issuer), { method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: cfg.redirectUri, client_id: cfg.clientId, code_verifier: verifier }) });
  const t = await tok.json();
  if (!tok.ok || !t.access_token) throw new Error('token endpoint answered ' + tok.status);
  $('status').textContent = 'signed in; calling the API';
  await show('me', '/me', t.access_token);
  await show('users', '/users', t.access_token);
  $('status').textContent = 'done';
}
callback().catch((e) => { $('status').textContent = 'error: ' + e.message; });
</script>
</body></html>
`;
}

/** Serves the page at `/` on a loopback port (0: a free one). */
export async function startSpaServer(port = 0): Promise<SpaServer> {
  let config: SpaConfig | undefined;
  let origin = '';
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' || path !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    if (!config) {
      res.writeHead(503, { 'Content-Type': 'text/plain' }).end('the local stack is still starting');
      return;
    }
    res
      .writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        // The page may talk to the API and the identity provider only.
        'Content-Security-Policy': `default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src ${new URL(config.api).origin} ${new URL(config.issuer).origin}; form-action 'none'`,
      })
      .end(spaPage(config, `${origin}/`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  origin = `http://localhost:${actual}`;
  return {
    origin,
    port: actual,
    configure: (c) => {
      config = c;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
