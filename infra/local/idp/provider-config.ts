/**
 * oidc-provider configuration that makes it behave like Auth0 where Latchkey can tell:
 * Auth0's paths (/oauth/token, /.well-known/jwks.json, /authorize, /oidc/register), RS256 JWT
 * access tokens for one API identifier, the `audience=` parameter as an alias of RFC 8707's
 * `resource=`, namespaced tenant/roles claims, `permissions` (RBAC), and, with the `auth0`
 * token profile, Auth0's claim shapes (`typ: JWT`, `azp`, `gty`, `<client_id>@clients`).
 */
import type { Account, Client, Configuration, Interaction, OidcCtx, ResourceServerInfo, Token, UnknownObject } from 'oidc-provider';
import type { JWK } from 'jose';
import { escapeHtml } from './http.js';
import type { OidcModule } from './load-provider.js';
import type { UserStore } from './user-store.js';

export type TokenProfile = 'auth0' | 'rfc9068';

export const ROUTES = {
  authorization: '/authorize',
  token: '/oauth/token',
  jwks: '/.well-known/jwks.json',
  userinfo: '/userinfo',
  registration: '/oidc/register',
  revocation: '/oauth/revoke',
  introspection: '/oauth/introspect',
  pushed_authorization_request: '/oauth/par',
  end_session: '/oidc/logout',
} as const;

export const INTERACTION_PREFIX = '/interaction/';

export interface ProviderSettings {
  issuer: string;
  audience: string;
  apiScopes: readonly string[];
  tenantClaim: string;
  rolesClaim: string;
  rolePermissions: Readonly<Record<string, readonly string[]>>;
  tokenProfile: TokenProfile;
  accessTokenTtlS: number;
  spaClientId: string;
  spaRedirectUris: readonly string[];
  initialAccessToken: string;
  cookieKeys: string[];
  /** Private JWKs, the current signing key first. */
  signingKeys: JWK[];
  currentKid: string;
  adapter: Configuration['adapter'];
  users: UserStore;
}

/** True for tokens of machine clients (client-credentials grant). */
function isClientCredentials(token: Token): boolean {
  return token.kind === 'ClientCredentials';
}

export function permissionsFor(roles: readonly string[], rolePermissions: ProviderSettings['rolePermissions']): string[] {
  return [...new Set(roles.flatMap((r) => rolePermissions[r] ?? []))].sort();
}

export function resourceServerInfo(s: ProviderSettings, client: Client | undefined): ResourceServerInfo {
  // Machine clients get what they were registered with (Auth0's client grant); user-facing
  // clients may ask for any scope the API defines.
  const machine = client?.grantTypes.includes('client_credentials') ?? false;
  return {
    scope: machine ? (client?.scope ?? '') : s.apiScopes.join(' '),
    audience: s.audience,
    accessTokenFormat: 'jwt',
    accessTokenTTL: s.accessTokenTtlS,
    jwt: { sign: { alg: 'RS256', kid: s.currentKid } },
  };
}

export function createProvider(mod: OidcModule, s: ProviderSettings): InstanceType<OidcModule['default']> {
  const { default: Provider, errors } = mod;

  const configuration: Configuration = {
    adapter: s.adapter,
    jwks: { keys: s.signingKeys },
    cookies: { keys: s.cookieKeys },
    routes: ROUTES,
    scopes: ['openid', 'profile', 'email', 'offline_access', ...s.apiScopes],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    extraParams: ['audience'],
    clients: [
      {
        client_id: s.spaClientId,
        client_name: 'Latchkey local SPA',
        application_type: 'web',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [...s.spaRedirectUris],
      },
    ],
    extraClientMetadata: {
      properties: ['tenant_id', 'key_id'],
      validator(_ctx: OidcCtx, key: string, value: unknown) {
        if (value !== undefined && (typeof value !== 'string' || value.length === 0 || value.length > 256)) {
          throw new errors.InvalidClientMetadata(`${key} must be a non-empty string`);
        }
      },
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      clientCredentials: { enabled: true },
      registration: { enabled: true, initialAccessToken: s.initialAccessToken, issueRegistrationAccessToken: true },
      // One registration access token per client for its whole life keeps the management
      // adapter simple (RFC 7592 allows either).
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
      resourceIndicators: {
        enabled: true,
        defaultResource(ctx: OidcCtx | undefined, _client: Client, oneOf?: string | string[]) {
          if (oneOf) return oneOf;
          // Auth0 callers send `audience=`; an unknown one is refused by getResourceServerInfo.
          const alias = ctx?.oidc?.params?.['audience'] ?? ctx?.oidc?.body?.['audience'];
          return typeof alias === 'string' && alias !== '' ? alias : s.audience;
        },
        useGrantedResource: () => true,
        getResourceServerInfo(_ctx: OidcCtx | undefined, resource: string, client: Client) {
          if (resource !== s.audience) throw new errors.InvalidTarget(`unknown API identifier ${resource}`);
          return resourceServerInfo(s, client);
        },
      },
    },
    async extraTokenClaims(_ctx: OidcCtx | undefined, token: Token) {
      if (isClientCredentials(token)) {
        // Auth0 grants every scope of the client grant when none is asked for; oidc-provider
        // grants none. The payload copy is made in formats.customizers.jwt below.
        if (!token.scope && token.resourceServer?.scope) token.scope = token.resourceServer.scope;
        const tenantId = token.client?.['tenant_id'];
        return typeof tenantId === 'string' ? { [s.tenantClaim]: tenantId } : undefined;
      }
      const user = token.accountId ? s.users.get(token.accountId) : undefined;
      if (!user) return undefined;
      return {
        ...(user.tenantId !== undefined ? { [s.tenantClaim]: user.tenantId } : {}),
        [s.rolesClaim]: user.roles,
        permissions: permissionsFor(user.roles, s.rolePermissions),
      };
    },
    formats: {
      customizers: {
        jwt(ctx: OidcCtx | undefined, token: Token, jwt: { header?: UnknownObject; payload: UnknownObject }) {
          if (isClientCredentials(token) && jwt.payload['scope'] === undefined && token.scope) jwt.payload['scope'] = token.scope;
          // Auth0 with RBAC on: a user gets only the API scopes their roles grant, whatever they asked for.
          const user = !isClientCredentials(token) && token.accountId ? s.users.get(token.accountId) : undefined;
          if (user && typeof jwt.payload['scope'] === 'string') {
            const granted = new Set(permissionsFor(user.roles, s.rolePermissions));
            const kept = jwt.payload['scope'].split(' ').filter((x) => x !== '' && (!s.apiScopes.includes(x) || granted.has(x)));
            if (kept.length > 0) jwt.payload['scope'] = kept.join(' ');
            else delete jwt.payload['scope'];
          }
          if (s.tokenProfile !== 'auth0') return;
          jwt.header = { ...jwt.header, typ: 'JWT' };
          const clientId = jwt.payload['client_id'];
          delete jwt.payload['client_id'];
          jwt.payload['azp'] = clientId;
          if (isClientCredentials(token)) {
            jwt.payload['sub'] = `${String(clientId)}@clients`;
            jwt.payload['gty'] = 'client-credentials';
          } else if (ctx?.oidc?.entities?.AuthorizationCode?.scope?.split(' ').includes('openid')) {
            // Auth0 adds its userinfo endpoint to `aud` when the login asked for openid.
            jwt.payload['aud'] = [s.audience, new URL('userinfo', s.issuer).href];
          }
        },
      },
    },
    async findAccount(_ctx: OidcCtx | undefined, sub: string): Promise<Account | undefined> {
      const user = s.users.get(sub);
      // Blocked users get no tokens, also not from a code issued before they were blocked.
      if (!user || user.blocked) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, email: user.email, email_verified: true, name: user.name };
        },
      };
    },
    interactions: {
      url: (_ctx: OidcCtx, interaction: Interaction) => `${INTERACTION_PREFIX}${interaction.uid}`,
    },
    clientBasedCORS(_ctx: OidcCtx, origin: string, client: Client) {
      return client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin);
    },
    ttl: {
      AccessToken: s.accessTokenTtlS,
      ClientCredentials: s.accessTokenTtlS,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 86_400,
      Grant: 86_400,
      RefreshToken: 86_400,
    },
    async renderError(ctx: OidcCtx, out: Record<string, string>) {
      ctx.type = 'html';
      const rows = Object.entries(out)
        .map(([k, v]) => `<p><strong>${escapeHtml(k)}</strong>: ${escapeHtml(String(v))}</p>`)
        .join('');
      ctx.body = `<!doctype html><meta charset="utf-8"><title>Error</title><h1>Local IdP: something went wrong</h1>${rows}`;
    },
  };

  const provider = new Provider(s.issuer, configuration);
  provider.on('server_error', (_ctx: unknown, err: unknown) => {
    console.error('local IdP: server error:', err instanceof Error ? err.stack : err);
  });
  return provider;
}
