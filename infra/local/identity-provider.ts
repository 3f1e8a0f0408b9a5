/**
 * A real OAuth 2.0 / OpenID Connect authorization server in Auth0's role, for tests and
 * `npm start`: oidc-provider on a plain Node HTTP server on 127.0.0.1.
 *
 * What it serves (paths as Auth0's, so Latchkey's defaults derived from the issuer work):
 *   /.well-known/openid-configuration, /.well-known/jwks.json
 *   POST /oauth/token        client_credentials and authorization_code (+ PKCE); `resource=`
 *                            or Auth0's `audience=` selects the API (default: `audience`)
 *   /authorize, /interaction/*  login form for local users, automatic consent
 *   POST /oidc/register      RFC 7591 (Bearer <initialAccessToken>); /oidc/register/:id RFC 7592
 *   GET /                    starts the SPA login in a browser; GET /callback finishes it
 *   /local-admin/*           users and script shortcuts (see idp/admin-api.ts), Bearer <adminToken>
 *
 * Access tokens are RS256 JWTs for one API with namespaced tenant/roles claims; see
 * idp/provider-config.ts for the claim shapes. All state (keys, clients, users, sessions) is in
 * memory and lives as long as this object, across pause()/resume() and key rotation.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import { ADMIN_PREFIX, handleAdmin, type AdminActions } from './idp/admin-api.js';
import { deleteClient, listKeyClients, registerClient, rotateClientSecret, type RegisterClientInput, type RegisteredClient } from './idp/clients.js';
import { LocalIdpError } from './idp/errors.js';
import { sendHtml, sendJson } from './idp/http.js';
import { handleInteraction } from './idp/interactions.js';
import { loadOidcProvider } from './idp/load-provider.js';
import { MemoryStore, tokenRequestScope } from './idp/memory-adapter.js';
import { callbackPage, startPage } from './idp/pages.js';
import { createProvider, INTERACTION_PREFIX, resourceServerInfo, ROUTES, type ProviderSettings, type TokenProfile } from './idp/provider-config.js';
import { newSigningKey, type SigningKey } from './idp/signing-keys.js';
import { TokenGate, type FailureMode, type FailureOptions, type TokenStats } from './idp/token-gate.js';
import { UserStore, type LocalUser, type NewUser, type UserPatch, type UserQuery } from './idp/user-store.js';

export { LocalIdpError } from './idp/errors.js';
export type { LocalIdpErrorCode } from './idp/errors.js';
export type { FailureMode, FailureOptions, TokenStats } from './idp/token-gate.js';
export type { LocalUser, NewUser, UserPatch, UserQuery } from './idp/user-store.js';
export type { RegisterClientInput, RegisteredClient } from './idp/clients.js';
export type { TokenProfile } from './idp/provider-config.js';

export const DEFAULT_AUDIENCE = 'https://api.latchkey.local';
/** Latchkey's permissions, as scopes defined on the local API. */
export const DEFAULT_API_SCOPES = ['tenants:admin', 'keys:read', 'keys:write', 'users:read', 'users:write', 'audit:read'] as const;
export const SPA_CLIENT_ID = 'latchkey-local-spa';

export interface LocalIdentityProviderOptions {
  /** 0 or absent: a free port. Set it to keep the issuer stable across process restarts. */
  port?: number;
  /** API identifier: `aud` of access tokens (default https://api.latchkey.local). */
  audience?: string;
  /** Scopes the API defines; machine clients may be registered with any of them. */
  apiScopes?: readonly string[];
  tenantClaim?: string;
  rolesClaim?: string;
  /** Auth0 RBAC: permissions each role carries, emitted as `permissions` in user tokens (default none). */
  rolePermissions?: Readonly<Record<string, readonly string[]>>;
  /** 'auth0' (default): typ JWT, azp, gty, `<client_id>@clients`. 'rfc9068': oidc-provider's own shapes (typ at+jwt, sub = client id, client_id). */
  tokenProfile?: TokenProfile;
  /** Access-token lifetime (default 86,400 s, Auth0's default for APIs). */
  accessTokenTtlS?: number;
  /** Redirect URIs of the SPA client (default `<origin>/callback`). */
  spaRedirectUris?: readonly string[];
  /**
   * For this long after a client is registered (or its secret rotated), the token endpoint
   * answers `invalid_client` for it, as Auth0 may for up to 30 s (default 0).
   */
  credentialPropagationMs?: number;
  /** Fixed secrets for scripts; random per start when absent. */
  initialAccessToken?: string;
  adminToken?: string;
}

export interface LocalIdentityProvider {
  /** Equals the `iss` of every token, trailing slash included (as Auth0's). */
  readonly issuer: string;
  readonly origin: string;
  readonly port: number;
  readonly audience: string;
  readonly apiScopes: readonly string[];
  readonly tenantClaim: string;
  readonly rolesClaim: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly authorizationEndpoint: string;
  readonly registrationEndpoint: string;
  readonly discoveryUrl: string;
  readonly adminUrl: string;
  readonly spaClientId: string;
  readonly spaRedirectUris: readonly string[];
  /** Bearer token for RFC 7591 registration. Secret: do not log. */
  readonly initialAccessToken: string;
  /** Bearer token for /local-admin. Secret: do not log. */
  readonly adminToken: string;
  /** Key id that signs new tokens. */
  readonly currentKid: string;
  readonly stats: TokenStats;
  readonly running: boolean;
  resetStats(): void;
  /** How long new client credentials are not yet accepted (Auth0: up to 30 s). */
  setCredentialPropagation(ms: number): void;
  /** Failure injection on the token endpoint only; 'none' restores normal service. */
  setFailure(mode: FailureMode, opts?: FailureOptions): void;
  /** A new key signs from now on; the old ones stay published unless dropOld. */
  rotateSigningKey(opts?: { dropOld?: boolean }): Promise<{ kid: string; previousKid: string }>;
  /** RFC 7591 registration over HTTP of a client-credentials client for a tenant; scopes must be in apiScopes. */
  registerClient(input: RegisterClientInput): Promise<RegisteredClient>;
  deleteClient(clientId: string): Promise<boolean>;
  rotateClientSecret(clientId: string): Promise<{ clientId: string; clientSecret: string }>;
  addUser(input: NewUser): LocalUser;
  getUser(userId: string): LocalUser | undefined;
  findUserByEmail(email: string): LocalUser | undefined;
  listUsers(query?: UserQuery): { users: LocalUser[]; total: number };
  updateUser(userId: string, patch: UserPatch): LocalUser;
  deleteUser(userId: string): boolean;
  /**
   * Shortcut for scripts and tests: a user access token minted by the provider's own
   * AccessToken model (same issuer, key and claims as the login flow), for the SPA client.
   * `scopes` must be API scopes; default none (permissions then come from roles).
   */
  issueUserToken(input: { userId: string; scopes?: string[] }): Promise<string>;
  /** Closes the listener and every connection; state is kept. */
  pause(): Promise<void>;
  /** Listens again on the same port, so the issuer is unchanged. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeListener(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const secret = () => randomBytes(32).toString('base64url');

export async function startLocalIdentityProvider(opts: LocalIdentityProviderOptions = {}): Promise<LocalIdentityProvider> {
  const mod = await loadOidcProvider();
  const users = new UserStore();
  const gate = new TokenGate();
  const store = new MemoryStore();
  store.credentialPropagationMs = opts.credentialPropagationMs ?? 0;
  let keys: SigningKey[] = [await newSigningKey()];

  // The issuer contains the port, so the server listens before the provider exists.
  let handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> = async (_req, res) => sendJson(res, 503, { error: 'starting' });
  const server = createServer((req, res) => void handler(req, res));
  await listen(server, opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${origin}/`;
  const at = (path: string) => new URL(path, issuer).href;

  let settings: ProviderSettings = {
    issuer,
    audience: opts.audience ?? DEFAULT_AUDIENCE,
    apiScopes: [...(opts.apiScopes ?? DEFAULT_API_SCOPES)],
    tenantClaim: opts.tenantClaim ?? 'https://latchkey.dev/tenant_id',
    rolesClaim: opts.rolesClaim ?? 'https://latchkey.dev/roles',
    rolePermissions: opts.rolePermissions ?? {},
    tokenProfile: opts.tokenProfile ?? 'auth0',
    accessTokenTtlS: opts.accessTokenTtlS ?? 86_400,
    spaClientId: SPA_CLIENT_ID,
    spaRedirectUris: [...(opts.spaRedirectUris ?? [at('callback')])],
    initialAccessToken: opts.initialAccessToken ?? secret(),
    cookieKeys: [secret()],
    signingKeys: keys.map((k) => k.privateJwk),
    currentKid: keys[0]!.kid,
    adapter: store.adapterFactory(),
    users,
  };
  let provider: Provider = createProvider(mod, settings);
  let providerCallback = provider.callback();
  const adminToken = opts.adminToken ?? secret();
  let state: 'running' | 'paused' | 'stopped' = 'running';

  async function mintUserToken(input: { userId: string; scopes?: string[] }): Promise<{ accessToken: string; expiresIn: number }> {
    const user = users.get(input.userId);
    if (!user) throw new LocalIdpError('user_not_found', 'The user does not exist.');
    if (user.blocked) throw new LocalIdpError('user_blocked', 'The user is blocked.');
    const scopes = input.scopes ?? [];
    const unknown = scopes.filter((s) => !settings.apiScopes.includes(s));
    if (unknown.length > 0) throw new LocalIdpError('unknown_scope', `not scopes of the API: ${unknown.join(' ')}`);
    const client = await provider.Client.find(SPA_CLIENT_ID);
    if (!client) throw new Error('the SPA client is missing from the provider');
    const token = new provider.AccessToken({
      accountId: user.userId,
      client,
      scope: scopes.join(' ') || undefined,
      resourceServer: new provider.ResourceServer(settings.audience, resourceServerInfo(settings, client)),
    });
    const accessToken = await token.save();
    return { accessToken, expiresIn: token.expiration };
  }

  const actions: AdminActions = {
    adminToken,
    users,
    issueUserToken: mintUserToken,
    rotateClientSecret: (id) => rotateClientSecret(provider, id),
    deleteClient: (id) => deleteClient(provider, id),
    listKeyClients: (filter) => listKeyClients(store, filter),
  };

  handler = async (req, res) => {
    const url = new URL(req.url ?? '/', origin);
    const path = url.pathname;
    try {
      if (path.startsWith(ADMIN_PREFIX)) return await handleAdmin(actions, req, res, url);
      if (path.startsWith(INTERACTION_PREFIX)) return await handleInteraction(provider, users, req, res, path);
      if (req.method === 'GET' && path === '/') {
        return sendHtml(res, 200, startPage({ clientId: SPA_CLIENT_ID, redirectUri: settings.spaRedirectUris[0]!, audience: settings.audience, issuer }));
      }
      if (req.method === 'GET' && path === '/callback') {
        return sendHtml(res, 200, callbackPage({ clientId: SPA_CLIENT_ID, redirectUri: settings.spaRedirectUris[0]!, issuer }));
      }
      if (req.method === 'POST' && path === ROUTES.token) {
        const go = await gate.admit(res);
        // Answered by the gate, dropped by pause()/stop(), or the caller gave up while it hung.
        if (!go || req.destroyed || res.destroyed) {
          if (!res.headersSent) res.destroy();
          return;
        }
        return await tokenRequestScope.run(true, () => providerCallback(req, res));
      }
      await providerCallback(req, res);
    } catch (err) {
      console.error('local IdP: request failed:', err instanceof Error ? err.message : err);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    }
  };

  async function shutdown(next: 'paused' | 'stopped'): Promise<void> {
    if (state === 'stopped') return;
    state = next;
    gate.cancelWaits();
    await closeListener(server);
  }

  return {
    issuer,
    origin,
    port,
    get audience() {
      return settings.audience;
    },
    get apiScopes() {
      return settings.apiScopes;
    },
    get tenantClaim() {
      return settings.tenantClaim;
    },
    get rolesClaim() {
      return settings.rolesClaim;
    },
    jwksUri: at(ROUTES.jwks),
    tokenEndpoint: at(ROUTES.token),
    authorizationEndpoint: at(ROUTES.authorization),
    registrationEndpoint: at(ROUTES.registration),
    discoveryUrl: at('/.well-known/openid-configuration'),
    adminUrl: at(ADMIN_PREFIX),
    spaClientId: SPA_CLIENT_ID,
    get spaRedirectUris() {
      return settings.spaRedirectUris;
    },
    get initialAccessToken() {
      return settings.initialAccessToken;
    },
    adminToken,
    get currentKid() {
      return settings.currentKid;
    },
    stats: gate.stats,
    get running() {
      return state === 'running';
    },
    resetStats: () => gate.resetStats(),
    setFailure: (mode, o) => gate.setFailure(mode, o),
    setCredentialPropagation: (ms) => {
      store.credentialPropagationMs = ms;
    },
    async rotateSigningKey(o = {}) {
      const previousKid = settings.currentKid;
      const key = await newSigningKey();
      keys = o.dropOld ? [key] : [key, ...keys];
      // oidc-provider fixes its key set at construction: build a new one over the same store.
      settings = { ...settings, signingKeys: keys.map((k) => k.privateJwk), currentKid: key.kid };
      provider = createProvider(mod, settings);
      providerCallback = provider.callback();
      return { kid: key.kid, previousKid };
    },
    async registerClient(input) {
      // As in Auth0, a client may only be granted scopes the API defines; say which option fixes it.
      const unknown = input.scopes.filter((sc) => !settings.apiScopes.includes(sc));
      if (unknown.length > 0) throw new LocalIdpError('unknown_scope', `not scopes of the API (add them to the apiScopes option): ${unknown.join(' ')}`);
      return registerClient(at(ROUTES.registration), settings.initialAccessToken, input);
    },
    deleteClient: (id) => deleteClient(provider, id),
    rotateClientSecret: (id) => rotateClientSecret(provider, id),
    addUser: (input) => users.add(input),
    getUser: (id) => users.get(id),
    findUserByEmail: (email) => users.findByEmail(email),
    listUsers: (q) => users.list(q),
    updateUser: (id, patch) => users.update(id, patch),
    deleteUser: (id) => users.delete(id),
    issueUserToken: async (input) => (await mintUserToken(input)).accessToken,
    pause: () => shutdown('paused'),
    async resume() {
      if (state === 'stopped') throw new LocalIdpError('not_running', 'the identity provider was stopped');
      if (state === 'running') return;
      await listen(server, port);
      state = 'running';
    },
    stop: () => shutdown('stopped'),
  };
}
