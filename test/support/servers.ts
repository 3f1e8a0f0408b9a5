/**
 * Test helpers around the local identity provider: starting one, and getting a user token
 * through the real authorization-code + PKCE flow with plain fetch (what a browser does:
 * follow redirects, keep cookies, submit the login form).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  startLocalIdentityProvider,
  type LocalIdentityProvider,
  type LocalIdentityProviderOptions,
} from '../../infra/local/identity-provider.js';

export type { LocalIdentityProvider } from '../../infra/local/identity-provider.js';

export function startTestIdp(opts: LocalIdentityProviderOptions = {}): Promise<LocalIdentityProvider> {
  return startLocalIdentityProvider(opts);
}

/** Just enough of a cookie jar: names are unique across the IdP's paths, so paths are ignored. */
class CookieJar {
  readonly #cookies = new Map<string, string>();

  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0/i.test(line);
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export interface LoginResult {
  /** Status of the login form answer when it did not redirect (wrong password, blocked user). */
  loginStatus?: number;
  code?: string;
  state?: string;
  /** Error of the authorization response, if any. */
  error?: string;
  accessToken?: string;
  idToken?: string;
  /** Raw token endpoint response. */
  tokenResponse?: Record<string, unknown>;
  /** Number of HTTP requests made, for curiosity and loop detection. */
  requests: number;
}

export interface LoginOptions {
  email: string;
  password: string;
  scope?: string;
  /** Sent as Auth0's `audience=` (default: none, the IdP's default API applies). */
  audience?: string;
  redirectUri?: string;
}

const b64url = (b: Buffer) => b.toString('base64url');

/** GET /authorize -> login form -> POST credentials -> consent -> redirect with code -> token. */
export async function loginWithPkce(idp: LocalIdentityProvider, o: LoginOptions): Promise<LoginResult> {
  const jar = new CookieJar();
  const redirectUri = o.redirectUri ?? idp.spaRedirectUris[0]!;
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(12));
  const authorize = new URL(idp.authorizationEndpoint);
  authorize.search = new URLSearchParams({
    client_id: idp.spaClientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: o.scope ?? 'openid profile email',
    state,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    ...(o.audience ? { audience: o.audience } : {}),
  }).toString();

  const result: LoginResult = { requests: 0 };
  let next: { url: string; init?: RequestInit } | undefined = { url: authorize.href };
  let loggedIn = false;
  while (next) {
    if (++result.requests > 20) throw new Error('too many hops in the login flow');
    const res: Response = await fetch(next.url, {
      ...next.init,
      redirect: 'manual',
      headers: { ...(next.init?.headers as Record<string, string> | undefined), cookie: jar.header() },
    });
    jar.take(res);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer();
      const target: URL = new URL(location, next.url);
      if (target.href.startsWith(redirectUri)) {
        result.code = target.searchParams.get('code') ?? undefined;
        result.state = target.searchParams.get('state') ?? undefined;
        result.error = target.searchParams.get('error') ?? undefined;
        break;
      }
      next = { url: target.href };
      continue;
    }
    const html = await res.text();
    const action = /<form method="post" action="([^"]+\/login)"/.exec(html)?.[1];
    if (res.status === 200 && action && !loggedIn) {
      loggedIn = true;
      next = {
        url: new URL(action.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))), next.url).href,
        init: {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ email: o.email, password: o.password }).toString(),
        },
      };
      continue;
    }
    result.loginStatus = res.status;
    return result;
  }

  if (!result.code) return result;
  if (result.state !== state) throw new Error('state mismatch in the authorization response');
  const res = await fetch(idp.tokenEndpoint, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code: result.code, redirect_uri: redirectUri, client_id: idp.spaClientId, code_verifier: verifier }),
  });
  result.requests++;
  result.tokenResponse = (await res.json()) as Record<string, unknown>;
  const at = result.tokenResponse['access_token'];
  const it = result.tokenResponse['id_token'];
  if (typeof at === 'string') result.accessToken = at;
  if (typeof it === 'string') result.idToken = it;
  return result;
}

/** Client-credentials exchange as Latchkey's token endpoint adapter makes it. */
export async function clientCredentials(
  idp: LocalIdentityProvider,
  creds: { clientId: string; clientSecret: string },
  extra: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(idp.tokenEndpoint, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret, ...extra }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/**
 * What a key's holder can do with its client id and secret: ask the provider's own token
 * endpoint for a token (for the API's audience) and send it as Bearer.
 */
export async function keyHolderToken(idp: LocalIdentityProvider, creds: { clientId: string; clientSecret: string }): Promise<string> {
  const res = await clientCredentials(idp, creds, { resource: idp.audience });
  if (res.status !== 200 || typeof res.body.access_token !== 'string') throw new Error(`the token endpoint answered ${res.status}`);
  return res.body.access_token;
}

/**
 * The authorizer's environment for the local identity provider (its key set and token endpoint,
 * `resource=` for the audience, as oidc-provider takes it) and a token-cache table; `extra`
 * adds or overrides settings.
 */
export function localAuthorizerEnv(
  idp: { issuer: string; audience: string; jwksUri: string; tokenEndpoint: string },
  table: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { ISSUER: idp.issuer, AUDIENCE: idp.audience, JWKS_URI: idp.jwksUri, TOKEN_ENDPOINT: idp.tokenEndpoint, TOKEN_AUDIENCE_PARAM: 'resource', TOKEN_CACHE_TABLE: table, ...extra };
}
