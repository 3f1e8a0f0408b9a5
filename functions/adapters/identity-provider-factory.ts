/**
 * Chooses the identity-provider adapter from configuration. Auth0 reads its Management API
 * credentials from Secrets Manager on first use; the local provider (`npm start`) is reached
 * over HTTP. Adapters load lazily so a cold start pays only for the one it uses.
 */
import type { ManagementConfig } from '../core/config.js';
import type { IdentityProvider } from '../core/identity-provider.js';
import type { Log } from '../core/log.js';
import { onFirstUse } from '../core/once.js';

export function identityProviderFrom(cfg: ManagementConfig, log: Log): () => Promise<IdentityProvider> {
  return onFirstUse(() => create(cfg, log));
}

async function create(cfg: ManagementConfig, log: Log): Promise<IdentityProvider> {
  if (cfg.idp === 'local') {
    const { LocalIdentityProvider } = await import('./local-identity-provider.js');
    return new LocalIdentityProvider({ baseUrl: cfg.localIdpUrl!, adminToken: cfg.localIdpAdminToken!, registrationToken: cfg.localIdpRegistrationToken });
  }
  const [{ createAuth0IdentityProvider }, { createAuth0CredentialsLoader }] = await Promise.all([
    import('./auth0-identity-provider.js'),
    import('./auth0-credentials.js'),
  ]);
  return createAuth0IdentityProvider(createAuth0CredentialsLoader(cfg.auth0SecretId!), { log });
}
