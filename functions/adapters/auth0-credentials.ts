/**
 * Reads the Auth0 Management API client credentials from Secrets Manager.
 * The secret holds JSON `{ "domain": "...", "clientId": "...", "clientSecret": "..." }`.
 * Powertools caches the parsed value for `maxAgeS`, so a warm Lambda reads it at most once
 * per period and still picks up a rotated secret without a redeploy.
 * Errors name the missing or invalid field but never print a value.
 */
import { getSecret, type SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { GetParameterError, TransformParameterError } from '@aws-lambda-powertools/parameters';
import { ConfigError, UpstreamUnavailableError } from '../core/errors.js';

export interface Auth0ManagementCredentials {
  /** Tenant domain without scheme, e.g. `acme.eu.auth0.com`. */
  domain: string;
  clientId: string;
  clientSecret: string;
}

export interface Auth0CredentialsOptions {
  /** Seconds the value is cached in memory (default 300). */
  maxAgeS?: number;
  /** A provider with its own client (tests, custom endpoints); default: Powertools' shared one. */
  provider?: SecretsProvider;
}

export const DEFAULT_CREDENTIALS_MAX_AGE_S = 300;

/** Errors of Secrets Manager that no retry will fix: the deployment is wrong. */
const PERMANENT_SECRET_ERRORS = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'DecryptionFailure',
  'InvalidParameterException',
  'InvalidRequestException',
  'ValidationException',
]);

/** Validates the secret's shape; messages name fields, never values. */
export function parseAuth0Credentials(value: unknown, secretId = 'the Auth0 credentials secret'): Auth0ManagementCredentials {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${secretId} must hold a JSON object with domain, clientId and clientSecret`);
  }
  const record = value as Record<string, unknown>;
  const field = (name: keyof Auth0ManagementCredentials): string => {
    const v = record[name];
    if (v === undefined || v === null) throw new ConfigError(`${secretId} is missing the field "${name}"`);
    if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(`${secretId} field "${name}" must be a non-empty string`);
    return v.trim();
  };
  // People paste the domain as a URL; the SDK wants the bare host.
  const domain = field('domain').replace(/^https?:\/\//i, '').replace(/\/+$/, '');
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?$/.test(domain)) {
    throw new ConfigError(`${secretId} field "domain" must be a host name such as tenant.eu.auth0.com`);
  }
  return { domain, clientId: field('clientId'), clientSecret: field('clientSecret') };
}

/**
 * Reads and validates the credentials. Throws `ConfigError` when the secret is missing,
 * unreadable by this role, not JSON or incomplete, and `UpstreamUnavailableError`
 * (`ERR_SECRET_UNAVAILABLE`) when Secrets Manager fails or throttles.
 */
export async function getAuth0Credentials(secretId: string, options: Auth0CredentialsOptions = {}): Promise<Auth0ManagementCredentials> {
  if (!secretId) throw new ConfigError('The Auth0 credentials secret id is not configured (AUTH0_SECRET_ID)');
  const getOptions = { maxAge: options.maxAgeS ?? DEFAULT_CREDENTIALS_MAX_AGE_S, transform: 'json' as const };
  let value: unknown;
  try {
    value = options.provider ? await options.provider.get(secretId, getOptions) : await getSecret(secretId, getOptions);
  } catch (err) {
    // The JSON parser's message quotes the input, i.e. the secret: never pass it on.
    if (err instanceof TransformParameterError) throw new ConfigError(`Secret ${secretId} does not hold valid JSON`);
    const cause = err instanceof GetParameterError ? err.cause : err;
    const name = cause instanceof Error ? cause.name : undefined;
    if (name !== undefined && PERMANENT_SECRET_ERRORS.has(name)) {
      throw new ConfigError(`Secret ${secretId} cannot be read (${name})`);
    }
    throw new UpstreamUnavailableError('ERR_SECRET_UNAVAILABLE', `Secret ${secretId} could not be read from Secrets Manager`, 5, { cause });
  }
  if (value === undefined) throw new ConfigError(`Secret ${secretId} has no value`);
  return parseAuth0Credentials(value, `Secret ${secretId}`);
}

/**
 * A loader for `createAuth0IdentityProvider`: concurrent first calls share one read
 * (Powertools' cache only helps once a value is in it).
 */
export function createAuth0CredentialsLoader(secretId: string, options: Auth0CredentialsOptions = {}): () => Promise<Auth0ManagementCredentials> {
  let inFlight: Promise<Auth0ManagementCredentials> | undefined;
  return () => {
    inFlight ??= getAuth0Credentials(secretId, options).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
