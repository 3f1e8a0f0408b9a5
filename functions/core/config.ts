import { parseOrigins } from '../../packages/cdk/src/contract/cors.js';
import { DECISION_BUDGET_MS } from '../../packages/cdk/src/contract/limits.js';
import { ConfigError } from './errors.js';
import { parseUsagePlanNames } from './usage-plans.js';
import { USAGE_FLUSH_DEFAULTS } from './usage-counter.js';
import { DEFAULT_AUDIT_RETENTION_DAYS } from './audit.js';

/**
 * The one place that reads configuration. Functions call `loadAuthorizerConfig(process.env)`
 * at module load, so a misconfiguration fails the cold start with a message naming the variable.
 */
export type Env = Record<string, string | undefined>;

export const DEFAULT_TENANT_CLAIM = 'https://latchkey.dev/tenant_id';
export const DEFAULT_ROLES_CLAIM = 'https://latchkey.dev/roles';
const SUPPORTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwsAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

export interface JwtConfig {
  /** Exact `iss` expected, e.g. `https://tenant.eu.auth0.com/` (Auth0 keeps the trailing slash). */
  issuer: string;
  /** Accepted audiences; the token's `aud` must contain one of them. */
  audiences: string[];
  jwksUri: string;
  algorithms: JwsAlgorithm[];
  tenantClaim: string;
  rolesClaim: string;
  clockToleranceS: number;
  /** When set, the JOSE `typ` header must equal it (`at+jwt` for the RFC 9068 profile). */
  requiredTyp: string | undefined;
  maxTokenBytes: number;
  verifiedCacheSize: number;
  jwksTimeoutMs: number;
  /** Minimum time between two JWKS fetches caused by unknown `kid`s. */
  jwksCooldownMs: number;
  /** Age after which the key set is refreshed in the background of a request. */
  jwksMaxAgeMs: number;
  /**
   * Whether a user token's `scope` counts for permissions. `ignore` (default): only roles and the
   * `permissions` claim (Auth0 RBAC) do, because with RBAC off Auth0 grants users any scope they
   * ask for. `trust`: only with RBAC and "Add Permissions in the Access Token" enabled.
   */
  userScopes: 'ignore' | 'trust';
}

export interface ApiKeyConfig {
  tokenEndpoint: string;
  /** Audience requested in the client-credentials exchange. */
  audience: string;
  /** Auth0 takes `audience=`; RFC 8707 servers (oidc-provider) take `resource=`. */
  audienceParam: 'audience' | 'resource';
  clientAuth: 'client_secret_post' | 'client_secret_basic';
  /** DynamoDB table of the level-2 cache; without it only the in-memory level runs. */
  tokenCacheTable: string | undefined;
  /** Prefix of single-string keys, without the underscore (`lk` → `lk_…`). */
  keyPrefix: string;
  memoryCacheSize: number;
  /**
   * The revocation bound, for keys, users and tenants on every path: no decision uses principal
   * state older than this (and, without a state table, a cached key is re-exchanged after it).
   */
  revocationCheckS: number;
  /** Tokens are re-exchanged this long before they expire. */
  refreshBeforeS: number;
  negativeCacheS: number;
  exchangeTimeoutMs: number;
  /** Retry-After given when the identity provider fails without saying when to return. */
  defaultRetryAfterS: number;
  /** Time a cross-container exchange lease is held before others may take over. */
  leaseMs: number;
  /** Exchanges of not-yet-cached credentials one container may make per minute; past it, 503. */
  exchangeBudgetPerMin: number;
}

/** Where the authorizer reads principal state (the token-cache table's state feed). */
export interface StateConfig {
  table: string;
  region: string;
  /** `AWS_ENDPOINT_URL_DYNAMODB` (local runs); the regional endpoint when unset. */
  endpoint: string | undefined;
  /** The revocation bound: no decision uses principal state older than this. */
  maxAgeMs: number;
  timeoutMs: number;
}

export interface AuthorizerConfig {
  jwt: JwtConfig;
  apiKey: ApiKeyConfig;
  /** Absent without `TOKEN_CACHE_TABLE`: then no principal state is checked (not the deployed configuration). */
  state: StateConfig | undefined;
  /** Every decision answers within this; a dependency that cannot answer in time gives 503, never 401. */
  decisionBudgetMs: number;
  /** Audit table for security events (revoked keys used, refused users, rejected secrets); none without it. */
  auditTable: string | undefined;
  auditRetentionDays: number;
  logLevel: string;
  /**
   * Per-tenant limits on REST APIs (`USAGE_KEY_SECRET` + `USAGE_PLATFORM_KEY`): allowed REST
   * decisions name the caller's usage key in `usageIdentifierKey`. Absent: no usage key is returned.
   */
  usage: UsageKeyConfig | undefined;
  /** Usage counts (with `TOKEN_CACHE_TABLE`): flushed every `USAGE_FLUSH_S` or `USAGE_FLUSH_REQUESTS` decisions (`USAGE_FLUSH_DEFAULTS`); `USAGE_FLUSH_S=0` turns counting off. */
  usageCounts: { flushEveryMs: number; flushEveryRequests: number } | undefined;
}

/** What tenants' API Gateway key values are derived from, and the platform callers' key value. */
export interface UsageKeyConfig {
  secret: string;
  platformKey: string;
}

function loadUsageKeyConfig(env: Env): UsageKeyConfig | undefined {
  const secret = str(env, 'USAGE_KEY_SECRET');
  const platformKey = str(env, 'USAGE_PLATFORM_KEY');
  if (secret === undefined && platformKey === undefined) return undefined;
  if (secret === undefined || platformKey === undefined) throw new ConfigError('USAGE_KEY_SECRET and USAGE_PLATFORM_KEY are set together');
  checkUsageKeySecret(secret);
  if (platformKey.length < 20) throw new ConfigError('USAGE_PLATFORM_KEY must be at least 20 characters (an API Gateway key value)');
  return { secret, platformKey };
}

/** The secret tenants' usage key values are derived from (authorizer and tenants function alike). */
function checkUsageKeySecret(secret: string): string {
  if (secret.length < 32) throw new ConfigError('USAGE_KEY_SECRET must be at least 32 characters');
  return secret;
}

/** Usage counts need the table; `USAGE_FLUSH_S=0` turns them off. */
function loadUsageCounts(env: Env, table: string | undefined): AuthorizerConfig['usageCounts'] {
  const flushS = int(env, 'USAGE_FLUSH_S', USAGE_FLUSH_DEFAULTS.seconds, 0, 3600);
  if (!table || flushS === 0) return undefined;
  return { flushEveryMs: flushS * 1000, flushEveryRequests: int(env, 'USAGE_FLUSH_REQUESTS', USAGE_FLUSH_DEFAULTS.requests, 1, 1_000_000) };
}

export { DECISION_BUDGET_MS };

function str(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function required(env: Env, name: string): string {
  const v = str(env, name);
  if (v === undefined) throw new ConfigError(`${name} is required`);
  return v;
}

function url(name: string, value: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be an absolute URL, got "${value}"`);
  }
  const local = parsed.hostname === 'localhost' || parsed.hostname === '127.0.0.1' || parsed.hostname === '[::1]';
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && local)) {
    throw new ConfigError(`${name} must use https (http only for localhost), got "${value}"`);
  }
  return value;
}

function int(env: Env, name: string, dflt: number, min: number, max: number): number {
  const v = str(env, name);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) throw new ConfigError(`${name} must be a whole number, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], dflt: T): T {
  const v = str(env, name) ?? dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

function claimName(env: Env, name: string, dflt: string): string {
  const v = str(env, name) ?? dflt;
  if (!/^[\x21-\x7e]{1,256}$/.test(v) || v === '__proto__' || v === 'constructor' || v === 'prototype') {
    throw new ConfigError(`${name} must be a claim name of printable characters, got "${v}"`);
  }
  return v;
}

/** Issuer with exactly one trailing slash, for deriving endpoints. */
function base(issuer: string): string {
  return issuer.endsWith('/') ? issuer : `${issuer}/`;
}

export function loadJwtConfig(env: Env): JwtConfig {
  const issuer = url('ISSUER', required(env, 'ISSUER'));
  const audiences = required(env, 'AUDIENCE')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a.length > 0);
  if (audiences.length === 0) throw new ConfigError('AUDIENCE must name at least one audience');
  const algorithms = (str(env, 'ALGORITHMS') ?? 'RS256').split(',').map((a) => a.trim());
  for (const a of algorithms) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(a)) {
      throw new ConfigError(`ALGORITHMS may contain only ${SUPPORTED_ALGORITHMS.join(', ')}; "${a}" is not allowed`);
    }
  }
  return {
    issuer,
    audiences,
    jwksUri: url('JWKS_URI', str(env, 'JWKS_URI') ?? `${base(issuer)}.well-known/jwks.json`),
    algorithms: algorithms as JwsAlgorithm[],
    tenantClaim: claimName(env, 'TENANT_CLAIM', DEFAULT_TENANT_CLAIM),
    rolesClaim: claimName(env, 'ROLES_CLAIM', DEFAULT_ROLES_CLAIM),
    clockToleranceS: int(env, 'CLOCK_TOLERANCE_S', 5, 0, 300),
    requiredTyp: str(env, 'TOKEN_TYP'),
    maxTokenBytes: int(env, 'MAX_TOKEN_BYTES', 8192, 512, 65536),
    verifiedCacheSize: int(env, 'VERIFIED_CACHE_SIZE', 10_000, 0, 1_000_000),
    jwksTimeoutMs: int(env, 'JWKS_TIMEOUT_MS', 1500, 100, 30_000),
    jwksCooldownMs: int(env, 'JWKS_COOLDOWN_MS', 10_000, 0, 3_600_000),
    jwksMaxAgeMs: int(env, 'JWKS_MAX_AGE_MS', 600_000, 1000, 86_400_000),
    userScopes: oneOf(env, 'USER_SCOPES', ['ignore', 'trust'] as const, 'ignore'),
  };
}

export function loadApiKeyConfig(env: Env, jwt: JwtConfig): ApiKeyConfig {
  const prefix = str(env, 'API_KEY_PREFIX') ?? 'lk';
  if (!/^[a-z][a-z0-9]{1,9}$/.test(prefix)) throw new ConfigError(`API_KEY_PREFIX must be 2-10 lowercase letters or digits, got "${prefix}"`);
  return {
    tokenEndpoint: url('TOKEN_ENDPOINT', str(env, 'TOKEN_ENDPOINT') ?? `${base(jwt.issuer)}oauth/token`),
    audience: str(env, 'API_KEY_AUDIENCE') ?? jwt.audiences[0]!,
    audienceParam: oneOf(env, 'TOKEN_AUDIENCE_PARAM', ['audience', 'resource'] as const, 'audience'),
    clientAuth: oneOf(env, 'TOKEN_CLIENT_AUTH', ['client_secret_post', 'client_secret_basic'] as const, 'client_secret_post'),
    tokenCacheTable: str(env, 'TOKEN_CACHE_TABLE'),
    keyPrefix: prefix,
    memoryCacheSize: int(env, 'API_KEY_CACHE_SIZE', 1000, 1, 1_000_000),
    revocationCheckS: int(env, 'REVOCATION_CHECK_S', 30, 0, 60),
    refreshBeforeS: int(env, 'REFRESH_BEFORE_S', 60, 0, 3600),
    negativeCacheS: int(env, 'NEGATIVE_CACHE_S', 60, 0, 3600),
    exchangeTimeoutMs: int(env, 'EXCHANGE_TIMEOUT_MS', 3000, 100, 30_000),
    defaultRetryAfterS: int(env, 'RETRY_AFTER_S', 5, 1, 3600),
    leaseMs: int(env, 'EXCHANGE_LEASE_MS', 5000, 100, 60_000),
    exchangeBudgetPerMin: int(env, 'EXCHANGE_BUDGET_PER_MIN', 60, 1, 100_000),
  };
}

export function loadAuthorizerConfig(env: Env): AuthorizerConfig {
  const jwt = loadJwtConfig(env);
  const apiKey = loadApiKeyConfig(env, jwt);
  const decisionBudgetMs = int(env, 'DECISION_BUDGET_MS', DECISION_BUDGET_MS.default, DECISION_BUDGET_MS.min, DECISION_BUDGET_MS.max);
  const state: StateConfig | undefined = apiKey.tokenCacheTable
    ? {
        table: apiKey.tokenCacheTable,
        region: str(env, 'AWS_REGION') ?? str(env, 'AWS_DEFAULT_REGION') ?? 'us-east-1',
        endpoint: str(env, 'AWS_ENDPOINT_URL_DYNAMODB') ?? str(env, 'AWS_ENDPOINT_URL'),
        maxAgeMs: apiKey.revocationCheckS * 1000,
        // No read outlives the decision budget: past it no decision waits for the answer, and a
        // read stuck that long would only keep later decisions from a recovered table.
        timeoutMs: Math.min(int(env, 'STATE_TIMEOUT_MS', 1000, 100, 10_000), decisionBudgetMs),
      }
    : undefined;
  return {
    jwt,
    apiKey,
    state,
    decisionBudgetMs,
    auditTable: str(env, 'AUDIT_TABLE'),
    auditRetentionDays: int(env, 'AUDIT_RETENTION_DAYS', DEFAULT_AUDIT_RETENTION_DAYS, 1, 3650),
    logLevel: str(env, 'LOG_LEVEL') ?? 'INFO',
    usage: loadUsageKeyConfig(env),
    usageCounts: loadUsageCounts(env, apiKey.tokenCacheTable),
  };
}

export interface ManagementConfig {
  tenantsTable: string;
  tokenCacheTable: string;
  /** Powertools idempotency table; without it `Idempotency-Key` is ignored. */
  idempotencyTable: string | undefined;
  /** Audit trail table; without it nothing is recorded (not the deployed configuration). */
  auditTable: string | undefined;
  /** How long audit events are kept, days (TTL). */
  auditRetentionDays: number;
  /** Audience granted to API keys' clients. */
  audience: string;
  /** Scopes an API key may be given. */
  keyScopes: string[];
  keyPrefix: string;
  idp: 'auth0' | 'local';
  /** Secrets Manager id of `{ domain, clientId, clientSecret }` for the Auth0 Management API. */
  auth0SecretId: string | undefined;
  /** Base URL and admin token of the local identity provider (`npm start`). */
  localIdpUrl: string | undefined;
  localIdpAdminToken: string | undefined;
  localIdpRegistrationToken: string | undefined;
  /** REST API id and stage, to flush the stage's authorizer cache on revocation. */
  restApiId: string | undefined;
  stageName: string | undefined;
  logLevel: string;
  /** Browser origins allowed to read answers (CORS); empty: none. */
  allowedOrigins: string[];
  /**
   * Per-tenant usage plans (tenants function): the secret tenant key values are derived from,
   * the plans tenants may be on, the plan of new tenants, the prefix of plan and key names. Absent: no plans.
   */
  usagePlans: { secret: string; plans: string[]; defaultPlan: string; namePrefix: string } | undefined;
}

export const DEFAULT_KEY_SCOPES = 'users:read users:write keys:read keys:write';

/** `issuesKeys`: the tenants function, which also needs the audience its keys are granted. */
export function loadManagementConfig(env: Env, opts: { issuesKeys: boolean }): ManagementConfig {
  const idp = oneOf(env, 'IDP', ['auth0', 'local'] as const, 'auth0');
  const cfg: ManagementConfig = {
    tenantsTable: required(env, 'TENANTS_TABLE'),
    tokenCacheTable: required(env, 'TOKEN_CACHE_TABLE'),
    idempotencyTable: str(env, 'IDEMPOTENCY_TABLE'),
    auditTable: str(env, 'AUDIT_TABLE'),
    auditRetentionDays: int(env, 'AUDIT_RETENTION_DAYS', DEFAULT_AUDIT_RETENTION_DAYS, 1, 3650),
    audience: opts.issuesKeys ? required(env, 'AUDIENCE').split(',')[0]!.trim() : (str(env, 'AUDIENCE') ?? ''),
    keyScopes: (str(env, 'API_KEY_SCOPES') ?? DEFAULT_KEY_SCOPES).split(/[\s,]+/).filter((s) => s.length > 0),
    keyPrefix: str(env, 'API_KEY_PREFIX') ?? 'lk',
    idp,
    auth0SecretId: idp === 'auth0' ? required(env, 'AUTH0_SECRET_ID') : undefined,
    localIdpUrl: idp === 'local' ? url('LOCAL_IDP_URL', required(env, 'LOCAL_IDP_URL')) : undefined,
    localIdpAdminToken: idp === 'local' ? required(env, 'LOCAL_IDP_ADMIN_TOKEN') : undefined,
    localIdpRegistrationToken: str(env, 'LOCAL_IDP_REGISTRATION_TOKEN'),
    restApiId: str(env, 'REST_API_ID'),
    stageName: str(env, 'STAGE_NAME'),
    logLevel: str(env, 'LOG_LEVEL') ?? 'INFO',
    allowedOrigins: parseAllowedOrigins(str(env, 'ALLOWED_ORIGINS')),
    usagePlans: loadUsagePlans(env),
  };
  return cfg;
}

function loadUsagePlans(env: Env): ManagementConfig['usagePlans'] {
  const names = str(env, 'USAGE_PLANS');
  if (names === undefined) return undefined;
  const plans = parseUsagePlanNames(names);
  const defaultPlan = str(env, 'DEFAULT_USAGE_PLAN') ?? plans[0]!;
  if (!plans.includes(defaultPlan)) throw new ConfigError(`DEFAULT_USAGE_PLAN ${defaultPlan} is not in USAGE_PLANS`);
  const secret = checkUsageKeySecret(required(env, 'USAGE_KEY_SECRET'));
  return { secret, plans, defaultPlan, namePrefix: required(env, 'USAGE_NAME_PREFIX') };
}

/** The state migration run at deployment: the two tables only. */
export function loadMigrationConfig(env: Env): { tenantsTable: string; tokenCacheTable: string; logLevel: string } {
  return { tenantsTable: required(env, 'TENANTS_TABLE'), tokenCacheTable: required(env, 'TOKEN_CACHE_TABLE'), logLevel: str(env, 'LOG_LEVEL') ?? 'INFO' };
}

/** The usage-key backfill run at deployment: the two tables and the tenants function's usage-plan settings. */
export function loadUsageKeyBackfillConfig(env: Env): { tenantsTable: string; tokenCacheTable: string; logLevel: string; usagePlans: NonNullable<ManagementConfig['usagePlans']> } {
  const usagePlans = loadUsagePlans(env);
  if (!usagePlans) throw new ConfigError('USAGE_PLANS is required');
  return { ...loadMigrationConfig(env), usagePlans };
}

export interface PublicConfig {
  allowedOrigins: string[];
}

/** Configuration of the function answering without credentials (preflight, 405, `/openapi.json`). */
export function loadPublicConfig(env: Env): PublicConfig {
  return { allowedOrigins: parseAllowedOrigins(str(env, 'ALLOWED_ORIGINS')) };
}

/** Browser origins allowed by CORS (the rule: `parseOrigins` in the contract shared with the construct package). */
export function parseAllowedOrigins(raw: string | readonly string[] | undefined, name = 'ALLOWED_ORIGINS'): string[] {
  try {
    return parseOrigins(raw, name);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}
