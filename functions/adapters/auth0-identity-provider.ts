/**
 * The identity-provider port implemented with Auth0's Management API v2 (SDK `auth0` v4).
 *
 * - API keys are machine-to-machine clients (`non_interactive`, client credentials only)
 *   with one client grant for Latchkey's API; the tenant and key id sit in `client_metadata`.
 * - Users carry their tenant in `app_metadata.tenant_id` and roles in `app_metadata.roles`;
 *   users can't edit app_metadata, unlike user_metadata.
 * - 429 is retried a bounded number of times, honouring `x-ratelimit-reset` / `Retry-After`
 *   (the SDK's own retry ignores those headers, so it is switched off). When retries run out,
 *   or the wait would exceed the cap, `UpstreamUnavailableError('ERR_IDP_RATE_LIMITED')`.
 *   5xx, timeouts and network failures are not retried here (a POST may have been applied)
 *   and become `UpstreamUnavailableError('ERR_IDP_UNAVAILABLE')`.
 * - The SDK fetches its Management API token with client credentials and caches it for its
 *   lifetime (24 h at Auth0); keep one instance per Lambda environment so the token is reused
 *   (M2M tokens count against a monthly quota).
 */
import { createHash, randomBytes } from 'node:crypto';
import { AuthApiError, FetchError, ManagementApiError, ManagementClient, RequiredError, ResponseError, TimeoutError } from 'auth0';
import { UpstreamUnavailableError } from '../core/errors.js';
import {
  IdentityProviderError,
  identityProviderErrorFor,
  type CreateMachineClientInput,
  type CreateUserInput,
  type IdentityProvider,
  type IdpUser,
  type ListedMachineClient,
  type ListUsersQuery,
  type MachineClient,
  type UpdateUserInput,
  type UserPage,
} from '../core/identity-provider.js';
import { silentLog, type Log } from '../core/log.js';
import type { Auth0ManagementCredentials } from './auth0-credentials.js';

export interface Auth0RetryOptions {
  /** Attempts per Management API call, the first included (default 3). */
  maxAttempts?: number;
  /** Backoff when Auth0 gives no reset time: base × 2^(attempt−1) (default 250 ms). */
  baseDelayMs?: number;
  /** Longest wait before a retry; a longer announced reset fails fast instead (default 2000 ms). */
  maxDelayMs?: number;
  /** Test seam. */
  sleep?: (ms: number) => Promise<void>;
}

export interface Auth0IdentityProviderOptions extends Auth0ManagementCredentials {
  /** Database connection new users are created in. */
  connection?: string;
  /** Whether Auth0 sends a verification e-mail to new users (default true). */
  verifyEmail?: boolean;
  /**
   * Origin that receives the requests meant for `https://<domain>` (token endpoint and
   * Management API), e.g. `http://127.0.0.1:4010` for a local stand-in. Production leaves it unset.
   */
  baseUrl?: string;
  /** fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
  /** Per-request timeout (default 5000 ms; the SDK's own default is 10 s). */
  timeoutMs?: number;
  retry?: Auth0RetryOptions;
  log?: Log;
}

export const DEFAULT_AUTH0_CONNECTION = 'Username-Password-Authentication';
const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_UNAVAILABLE_RETRY_AFTER_S = 5;
const MAX_JITTER_MS = 100;

// ---------------------------------------------------------------------------------------------
// Lucene and passwords
// ---------------------------------------------------------------------------------------------

/**
 * Quotes a value as a Lucene phrase for Auth0 user search. Inside a phrase only `\` and `"`
 * are special; control characters have no business in a tenant id or an e-mail address
 * and are refused rather than guessed at.
 */
export function luceneQuote(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new IdentityProviderError('ERR_IDP_INVALID', 'Search values must not contain control characters', 400);
  }
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * An unguessable password for users created without one (they set theirs by e-mail).
 * 256 random bits; the suffix meets every Auth0 policy's character classes, the length stays
 * under bcrypt's 72 bytes, and a re-roll avoids three identical characters in a row
 * (refused by the "excellent" policy).
 */
export function generatePassword(): string {
  for (;;) {
    const candidate = `${randomBytes(32).toString('base64url')}aZ7!`;
    if (!/(.)\1\1/.test(candidate)) return candidate;
  }
}

// ---------------------------------------------------------------------------------------------
// Mapping Auth0 JSON defensively
// ---------------------------------------------------------------------------------------------

/** Auth0's largest page of clients. */
const CLIENT_PAGE_SIZE = 100;
/** 10,000 clients: past any plan's application limit, so more pages mean a broken answer. */
const MAX_CLIENT_PAGES = 100;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmptyString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function badAnswer(what: string): UpstreamUnavailableError {
  return new UpstreamUnavailableError('ERR_IDP_UNAVAILABLE', `Auth0 answered ${what} in an unexpected shape`, DEFAULT_UNAVAILABLE_RETRY_AFTER_S);
}

/** Maps an Auth0 user object; `undefined` when it has no usable `user_id`. */
export function toIdpUser(raw: unknown): IdpUser | undefined {
  if (!isRecord(raw)) return undefined;
  const userId = nonEmptyString(raw['user_id']);
  if (userId === undefined) return undefined;
  const appMetadata = isRecord(raw['app_metadata']) ? raw['app_metadata'] : {};
  const roles = Array.isArray(appMetadata['roles']) ? appMetadata['roles'].filter((r): r is string => typeof r === 'string' && r !== '') : [];
  return {
    userId,
    email: typeof raw['email'] === 'string' ? raw['email'] : '',
    name: nonEmptyString(raw['name']),
    tenantId: nonEmptyString(appMetadata['tenant_id']),
    roles: [...new Set(roles)],
    blocked: raw['blocked'] === true,
    emailVerified: raw['email_verified'] === true,
    createdAt: nonEmptyString(raw['created_at']),
    lastLogin: nonEmptyString(raw['last_login']),
  };
}

function requireUser(raw: unknown, what: string): IdpUser {
  const user = toIdpUser(raw);
  if (!user) throw badAnswer(what);
  return user;
}

// ---------------------------------------------------------------------------------------------
// Errors and rate limits
// ---------------------------------------------------------------------------------------------

type HttpError = ManagementApiError | AuthApiError | ResponseError;

function asHttpError(err: unknown): HttpError | undefined {
  return err instanceof ManagementApiError || err instanceof AuthApiError || err instanceof ResponseError ? err : undefined;
}

/**
 * Milliseconds until Auth0 accepts requests again, from `x-ratelimit-reset` (epoch seconds)
 * or `Retry-After` (seconds or HTTP date); `undefined` when neither is usable.
 */
export function rateLimitWaitMs(headers: Headers | undefined, nowMs: number): number | undefined {
  const resetHeader = headers?.get('x-ratelimit-reset')?.trim();
  if (resetHeader && /^\d+$/.test(resetHeader)) {
    const reset = Number(resetHeader);
    // Some proxies send a delta in seconds instead of an epoch time.
    return Math.max(0, reset < 1e9 ? reset * 1000 : reset * 1000 - nowMs);
  }
  const retryAfter = headers?.get('retry-after')?.trim();
  if (retryAfter) {
    if (/^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const at = Date.parse(retryAfter);
    if (Number.isFinite(at)) return Math.max(0, at - nowMs);
  }
  return undefined;
}

function auth0Message(err: HttpError): string {
  if (err instanceof ManagementApiError) return nonEmptyString(err.msg) ?? nonEmptyString(err.error) ?? `HTTP ${err.statusCode}`;
  if (err instanceof AuthApiError) return nonEmptyString(err.error_description) ?? nonEmptyString(err.error) ?? `HTTP ${err.statusCode}`;
  return `HTTP ${err.statusCode}`;
}

/** Turns anything the SDK throws into the port's errors. */
function mapError(operation: string, err: unknown): Error {
  if (err instanceof IdentityProviderError || err instanceof UpstreamUnavailableError) return err;
  if (err instanceof RequiredError) return err; // a bug on our side, not Auth0's answer
  const http = asHttpError(err);
  if (!http) {
    const timedOut = err instanceof TimeoutError || (err instanceof FetchError && err.cause instanceof TimeoutError);
    return new UpstreamUnavailableError(
      'ERR_IDP_UNAVAILABLE',
      `Auth0 ${timedOut ? 'timed out' : 'could not be reached'} (${operation})`,
      DEFAULT_UNAVAILABLE_RETRY_AFTER_S,
      { cause: err },
    );
  }
  const status = http.statusCode;
  const where = http instanceof AuthApiError ? `Auth0 token endpoint (${operation})` : `Auth0 ${operation}`;
  const message = `${where}: ${auth0Message(http)}`;
  if (status === 429) {
    const waitMs = rateLimitWaitMs(http.headers, Date.now());
    return new UpstreamUnavailableError('ERR_IDP_RATE_LIMITED', `${where}: rate limit reached`, waitMs === undefined ? 1 : waitMs / 1000, { cause: err });
  }
  if (status >= 500) {
    const waitMs = rateLimitWaitMs(http.headers, Date.now());
    return new UpstreamUnavailableError('ERR_IDP_UNAVAILABLE', `${where}: HTTP ${status}`, waitMs === undefined ? DEFAULT_UNAVAILABLE_RETRY_AFTER_S : waitMs / 1000, {
      cause: err,
    });
  }
  // 401: Auth0 refused Latchkey's own credentials or token; 403: the M2M app lacks a scope.
  return identityProviderErrorFor(status, message, { cause: err });
}

const isNotFound = (err: unknown) => err instanceof IdentityProviderError && err.code === 'ERR_IDP_NOT_FOUND';

function invalidArgument(message: string): IdentityProviderError {
  return new IdentityProviderError('ERR_IDP_INVALID', message, 400);
}

// ---------------------------------------------------------------------------------------------

/** Sends requests meant for `https://<domain>` to `baseUrl` instead. */
function redirectingFetch(domain: string, baseUrl: string, inner: typeof fetch): typeof fetch {
  const from = `https://${domain}`;
  const to = baseUrl.replace(/\/+$/, '');
  return (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url === from || url.startsWith(`${from}/`) || url.startsWith(`${from}?`)) {
      return inner(to + url.slice(from.length), init);
    }
    return inner(input, init);
  };
}

export class Auth0IdentityProvider implements IdentityProvider {
  private client: ManagementClient;
  private readonly connection: string;
  private readonly verifyEmail: boolean;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: Log;

  constructor(private readonly options: Auth0IdentityProviderOptions) {
    if (!options.domain || !options.clientId || !options.clientSecret) {
      throw new TypeError('Auth0IdentityProvider needs domain, clientId and clientSecret');
    }
    this.connection = options.connection ?? DEFAULT_AUTH0_CONNECTION;
    this.verifyEmail = options.verifyEmail ?? true;
    this.maxAttempts = Math.max(1, Math.floor(options.retry?.maxAttempts ?? 3));
    this.baseDelayMs = Math.max(0, options.retry?.baseDelayMs ?? 250);
    this.maxDelayMs = Math.max(0, options.retry?.maxDelayMs ?? 2_000);
    this.sleep = options.retry?.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.log = options.log ?? silentLog;
    this.client = this.newClient();
  }

  private newClient(): ManagementClient {
    const { domain, clientId, clientSecret, baseUrl } = this.options;
    const innerFetch = this.options.fetch ?? globalThis.fetch.bind(globalThis);
    return new ManagementClient({
      domain,
      clientId,
      clientSecret,
      timeoutDuration: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      // Our loop below honours Auth0's reset headers; the SDK's retry would not.
      retry: { enabled: false },
      fetch: baseUrl ? redirectingFetch(domain, baseUrl, innerFetch) : innerFetch,
    });
  }

  /** One Management API call with rate-limit retries and error mapping. */
  private async send<T>(operation: string, call: (client: ManagementClient) => Promise<{ data: T }>): Promise<T> {
    let reauthenticated = false;
    let attempt = 1;
    for (;;) {
      try {
        return (await call(this.client)).data;
      } catch (err) {
        const http = asHttpError(err);
        if (http instanceof ManagementApiError && http.statusCode === 401 && !reauthenticated) {
          // The cached Management API token was refused (e.g. Auth0 rotated its signing key):
          // a new client fetches a new token; retry once.
          reauthenticated = true;
          this.client = this.newClient();
          continue;
        }
        if (http?.statusCode === 429 && attempt < this.maxAttempts) {
          const announced = rateLimitWaitMs(http.headers, Date.now());
          const waitMs = announced ?? this.baseDelayMs * 2 ** (attempt - 1);
          if (waitMs <= this.maxDelayMs) {
            attempt++;
            await this.sleep(waitMs + Math.floor(Math.random() * Math.min(MAX_JITTER_MS, this.baseDelayMs + 1)));
            continue;
          }
        }
        throw mapError(operation, err);
      }
    }
  }

  async createMachineClient(input: CreateMachineClientInput): Promise<MachineClient> {
    const created: unknown = await this.send('create client', (m) =>
      m.clients.create({
        name: input.name,
        app_type: 'non_interactive',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_post',
        // Auth0 accepts only string values in client_metadata.
        client_metadata: { tenant_id: String(input.tenantId), key_id: String(input.keyId) },
      }),
    );
    const clientId = isRecord(created) ? nonEmptyString(created['client_id']) : undefined;
    const clientSecret = isRecord(created) ? nonEmptyString(created['client_secret']) : undefined;
    if (!clientId || !clientSecret) {
      if (clientId) await this.rollbackClient(clientId, input.keyId);
      throw badAnswer('the new client');
    }
    try {
      await this.send('create client grant', (m) => m.clientGrants.create({ client_id: clientId, audience: input.audience, scope: input.scopes }));
    } catch (err) {
      // A client without its grant would be an orphan that can never get a token: remove it.
      await this.rollbackClient(clientId, input.keyId);
      throw err;
    }
    return { clientId, clientSecret };
  }

  private async rollbackClient(clientId: string, keyId: string): Promise<void> {
    try {
      await this.deleteMachineClient(clientId);
    } catch (err) {
      this.log.warn('Auth0 client left behind after a failed key creation', {
        clientId,
        keyId,
        errorCode: (err as { code?: unknown }).code,
      });
    }
  }

  async rotateClientSecret(clientId: string): Promise<MachineClient> {
    if (!clientId) throw invalidArgument('A client id is required');
    const rotated: unknown = await this.send('rotate client secret', (m) => m.clients.rotateClientSecret({ client_id: clientId }));
    const clientSecret = isRecord(rotated) ? nonEmptyString(rotated['client_secret']) : undefined;
    if (!clientSecret) throw badAnswer('the rotated client');
    return { clientId, clientSecret };
  }

  async deleteMachineClient(clientId: string): Promise<void> {
    if (!clientId) throw invalidArgument('A client id is required');
    try {
      // Auth0 deletes the client's grants with it.
      await this.send('delete client', (m) => m.clients.delete({ client_id: clientId }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * `GET /api/v2/clients`, page by page (100 a page; Auth0 has no filter on `client_metadata`,
   * so the tenant and key id are matched here). Only clients whose metadata names a key.
   */
  async listMachineClients(filter: { tenantId?: string | undefined; keyId?: string | undefined } = {}): Promise<ListedMachineClient[]> {
    const out: ListedMachineClient[] = [];
    for (let page = 0; page < MAX_CLIENT_PAGES; page++) {
      const answer: unknown = await this.send('list clients', (m) =>
        m.clients.getAll({ page, per_page: CLIENT_PAGE_SIZE, include_totals: true, fields: 'client_id,client_metadata', include_fields: true }),
      );
      let raw: unknown[];
      let total: number | undefined;
      if (Array.isArray(answer)) raw = answer;
      else if (isRecord(answer) && Array.isArray(answer['clients'])) {
        raw = answer['clients'];
        total = typeof answer['total'] === 'number' ? answer['total'] : undefined;
      } else throw badAnswer('the client list');
      for (const c of raw) {
        if (!isRecord(c)) continue;
        const clientId = nonEmptyString(c['client_id']);
        const meta = isRecord(c['client_metadata']) ? c['client_metadata'] : {};
        const tenantId = nonEmptyString(meta['tenant_id']);
        const keyId = nonEmptyString(meta['key_id']);
        if (!clientId || tenantId === undefined || keyId === undefined) continue;
        if (filter.tenantId !== undefined && tenantId !== filter.tenantId) continue;
        if (filter.keyId !== undefined && keyId !== filter.keyId) continue;
        out.push({ clientId, tenantId, keyId });
      }
      if (raw.length < CLIENT_PAGE_SIZE || (total !== undefined && (page + 1) * CLIENT_PAGE_SIZE >= total)) return out;
    }
    throw badAnswer('the client list (more pages than expected)');
  }

  async createUser(input: CreateUserInput): Promise<IdpUser> {
    const created: unknown = await this.send('create user', (m) =>
      m.users.create({
        connection: this.connection,
        email: input.email,
        ...(input.name !== undefined ? { name: input.name } : {}),
        password: input.password ?? generatePassword(),
        app_metadata: { tenant_id: input.tenantId, roles: [...input.roles] },
        verify_email: this.verifyEmail,
      }),
    );
    return requireUser(created, 'the new user');
  }

  async getUser(userId: string): Promise<IdpUser | undefined> {
    if (!userId) return undefined;
    try {
      return requireUser(await this.send('get user', (m) => m.users.get({ id: userId })), 'the user');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async listUsers(query: ListUsersQuery): Promise<UserPage> {
    if (!query.tenantId) throw invalidArgument('A tenant id is required to list users');
    const terms = [`app_metadata.tenant_id:${luceneQuote(query.tenantId)}`];
    if (query.email !== undefined) terms.push(`email:${luceneQuote(query.email)}`);
    const answer: unknown = await this.send('list users', (m) =>
      m.users.getAll({
        q: terms.join(' AND '),
        search_engine: 'v3',
        page: query.page,
        per_page: query.perPage,
        include_totals: true,
        // A stable order keeps pages from overlapping while users are added.
        sort: 'created_at:1',
      }),
    );
    let rawUsers: unknown[];
    let total: number | undefined;
    if (Array.isArray(answer)) {
      rawUsers = answer; // include_totals ignored: no total available
    } else if (isRecord(answer) && Array.isArray(answer['users'])) {
      rawUsers = answer['users'];
      total = typeof answer['total'] === 'number' && answer['total'] >= 0 ? answer['total'] : undefined;
    } else {
      throw badAnswer('the user list');
    }
    const mapped = rawUsers.map(toIdpUser).filter((u): u is IdpUser => u !== undefined);
    // Defence in depth: tenant isolation must not rest on search semantics alone.
    const email = query.email?.toLowerCase();
    const users = mapped.filter((u) => u.tenantId === query.tenantId && (email === undefined || u.email.toLowerCase() === email));
    if (users.length !== rawUsers.length) {
      this.log.warn('Auth0 user search returned users outside the query', { tenantId: query.tenantId, dropped: rawUsers.length - users.length });
    }
    return {
      users,
      total: total ?? query.page * query.perPage + rawUsers.length,
      page: query.page,
      perPage: query.perPage,
    };
  }

  async updateUser(userId: string, patch: UpdateUserInput): Promise<IdpUser> {
    if (!userId) throw invalidArgument('A user id is required');
    const body: { name?: string; blocked?: boolean; app_metadata?: { roles: string[] } } = {};
    if (patch.name !== undefined) body.name = patch.name;
    if (patch.blocked !== undefined) body.blocked = patch.blocked;
    // Auth0 merges app_metadata at the top level, so sending only `roles` leaves
    // `tenant_id` untouched (never send tenant_id: null, which would delete it).
    if (patch.roles !== undefined) body.app_metadata = { roles: [...patch.roles] };
    if (Object.keys(body).length === 0) {
      // Auth0 refuses an empty PATCH; an empty update is just a read.
      const current = await this.getUser(userId);
      if (!current) throw new IdentityProviderError('ERR_IDP_NOT_FOUND', 'Auth0 get user: The user does not exist.', 404);
      return current;
    }
    return requireUser(await this.send('update user', (m) => m.users.update({ id: userId }, body)), 'the updated user');
  }

  async deleteUser(userId: string): Promise<void> {
    if (!userId) throw invalidArgument('A user id is required');
    try {
      // Auth0 answers 204 for unknown users too; a 404 is treated the same way.
      await this.send('delete user', (m) => m.users.delete({ id: userId }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------

export type Auth0ProviderSettings = Omit<Auth0IdentityProviderOptions, keyof Auth0ManagementCredentials>;

/**
 * An identity provider whose Management API credentials are read on first use (e.g. from
 * Secrets Manager via `createAuth0CredentialsLoader`). The loader is asked on every call —
 * it is expected to cache — and the underlying client, with its cached Management API token,
 * is kept until the credentials change (a rotated secret takes effect without a redeploy).
 */
export function createAuth0IdentityProvider(
  getCredentials: () => Promise<Auth0ManagementCredentials>,
  settings: Auth0ProviderSettings = {},
): IdentityProvider {
  let current: { fingerprint: string; provider: Auth0IdentityProvider } | undefined;
  const provider = async (): Promise<Auth0IdentityProvider> => {
    const credentials = await getCredentials();
    // A digest, so the comparison key is not a second plain copy of the secret.
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([credentials.domain, credentials.clientId, credentials.clientSecret]))
      .digest('base64url');
    if (current?.fingerprint !== fingerprint) {
      current = { fingerprint, provider: new Auth0IdentityProvider({ ...settings, ...credentials }) };
    }
    return current.provider;
  };
  return {
    createMachineClient: async (input) => (await provider()).createMachineClient(input),
    rotateClientSecret: async (clientId) => (await provider()).rotateClientSecret(clientId),
    deleteMachineClient: async (clientId) => (await provider()).deleteMachineClient(clientId),
    listMachineClients: async (filter) => (await provider()).listMachineClients(filter),
    createUser: async (input) => (await provider()).createUser(input),
    getUser: async (userId) => (await provider()).getUser(userId),
    listUsers: async (query) => (await provider()).listUsers(query),
    updateUser: async (userId, patch) => (await provider()).updateUser(userId, patch),
    deleteUser: async (userId) => (await provider()).deleteUser(userId),
  };
}
