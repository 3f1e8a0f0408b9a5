import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import {
  createAuth0CredentialsLoader,
  getAuth0Credentials,
  parseAuth0Credentials,
} from '../../functions/adapters/auth0-credentials.js';
import { createAuth0IdentityProvider } from '../../functions/adapters/auth0-identity-provider.js';
import { ConfigError, UpstreamUnavailableError } from '../../functions/core/errors.js';
import { startFakeSecretsManager, type FakeSecretsManager } from '../support/fake-secrets-manager.js';
import { startFakeAuth0Management } from '../support/fake-auth0-management.js';

const SECRET_ID = 'latchkey/auth0-management';
const CREDS = { domain: 'latchkey-test.eu.auth0.com', clientId: 'mgmt-client-id', clientSecret: 'mgmt-secret-do-not-leak-7f3a9c' };

let sm: FakeSecretsManager;

beforeAll(async () => {
  sm = await startFakeSecretsManager({ [SECRET_ID]: JSON.stringify(CREDS) });
  // The SDK client behind Powertools' getSecret is created on first use and reads these.
  process.env['AWS_ENDPOINT_URL_SECRETS_MANAGER'] = sm.endpoint;
  process.env['AWS_REGION'] = 'us-east-1';
  process.env['AWS_ACCESS_KEY_ID'] = 'test';
  process.env['AWS_SECRET_ACCESS_KEY'] = 'test';
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
});
afterAll(async () => {
  await sm.close();
});
beforeEach(() => {
  clearCaches();
  sm.secrets.set(SECRET_ID, JSON.stringify(CREDS));
});

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('getAuth0Credentials', () => {
  it('reads the JSON secret and caches it (one GetSecretValue for several calls)', async () => {
    const before = sm.calls;
    expect(await getAuth0Credentials(SECRET_ID)).toEqual(CREDS);
    expect(await getAuth0Credentials(SECRET_ID)).toEqual(CREDS);
    expect(await getAuth0Credentials(SECRET_ID)).toEqual(CREDS);
    expect(sm.calls - before).toBe(1);
    expect(sm.requestedIds.at(-1)).toBe(SECRET_ID);
  });

  it('reads again when caching is off (maxAgeS 0), picking up a rotated secret', async () => {
    const before = sm.calls;
    await getAuth0Credentials(SECRET_ID, { maxAgeS: 0 });
    sm.secrets.set(SECRET_ID, JSON.stringify({ ...CREDS, clientSecret: 'rotated' }));
    expect((await getAuth0Credentials(SECRET_ID, { maxAgeS: 0 })).clientSecret).toBe('rotated');
    expect(sm.calls - before).toBe(2);
  });

  it('the loader shares one read between concurrent first calls', async () => {
    const before = sm.calls;
    const load = createAuth0CredentialsLoader(SECRET_ID);
    const results = await Promise.all([load(), load(), load(), load()]);
    expect(results.every((r) => r.clientId === CREDS.clientId)).toBe(true);
    expect(sm.calls - before).toBe(1);
  });

  it('names a missing field without printing any value', async () => {
    sm.secrets.set(SECRET_ID, JSON.stringify({ domain: CREDS.domain, clientId: CREDS.clientId }));
    const err = await configError(getAuth0Credentials(SECRET_ID));
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toContain('"clientSecret"');
    expect(err.message).not.toContain(CREDS.clientId);
    expect(err.message).not.toContain(CREDS.domain);
  });

  it('refuses empty or non-string fields, non-objects and bad domains', async () => {
    expect(() => parseAuth0Credentials({ ...CREDS, clientId: '' })).toThrow(/"clientId" must be a non-empty string/);
    expect(() => parseAuth0Credentials({ ...CREDS, clientSecret: 123 })).toThrow(/"clientSecret" must be a non-empty string/);
    expect(() => parseAuth0Credentials(['x'])).toThrow(ConfigError);
    expect(() => parseAuth0Credentials({ ...CREDS, domain: 'tenant auth0 com' })).toThrow(/"domain" must be a host name/);
    expect(parseAuth0Credentials({ ...CREDS, domain: 'https://latchkey-test.eu.auth0.com/' }).domain).toBe(CREDS.domain);
  });

  it('a secret that is not JSON gives a ConfigError that does not quote it', async () => {
    sm.secrets.set(SECRET_ID, 'clientSecret=hunter2-not-json');
    const err = await configError(getAuth0Credentials(SECRET_ID));
    expect(err.message).toContain('valid JSON');
    expect(err.message).not.toContain('hunter2');
    expect(err.cause).toBeUndefined();
  });

  it('a missing secret gives a ConfigError naming the secret id', async () => {
    const err = await configError(getAuth0Credentials('latchkey/does-not-exist'));
    expect(err.message).toContain('latchkey/does-not-exist');
    expect(err.message).toContain('ResourceNotFoundException');
    await configError(getAuth0Credentials(''));
  });

  it('an unreachable Secrets Manager gives UpstreamUnavailableError', async () => {
    const down = await startFakeSecretsManager();
    const endpoint = down.endpoint;
    await down.close();
    const provider = new SecretsProvider({ clientConfig: { endpoint, region: 'us-east-1', maxAttempts: 1 } });
    const err = await getAuth0Credentials(SECRET_ID, { provider }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).code).toBe('ERR_SECRET_UNAVAILABLE');
  });
});

describe('Secrets Manager → Auth0 identity provider', () => {
  it('reads the secret once and fetches one Management API token for many calls', async () => {
    const auth0 = await startFakeAuth0Management({ ...CREDS });
    try {
      const before = sm.calls;
      const idp = createAuth0IdentityProvider(createAuth0CredentialsLoader(SECRET_ID), { baseUrl: auth0.origin });
      const user = await idp.createUser({ tenantId: 'acme', email: 'e2e@example.com', roles: ['admin'] });
      expect(await idp.getUser(user.userId)).toEqual(user);
      expect((await idp.listUsers({ tenantId: 'acme', page: 0, perPage: 10 })).total).toBe(1);
      expect(sm.calls - before).toBe(1);
      expect(auth0.managementTokenRequests).toBe(1);
    } finally {
      await auth0.close();
    }
  });
});
