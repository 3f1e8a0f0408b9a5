/**
 * Machine clients of the local identity provider. Registration goes through the real RFC 7591
 * endpoint over HTTP, as a management adapter would. Deletion and secret rotation work on the
 * provider's own client store, because RFC 7592 as oidc-provider implements it cannot rotate a
 * secret (a PUT keeps the stored one and refuses a different `client_secret`) and needs the
 * per-client registration access token, which scripts do not keep.
 */
import { randomBytes } from 'node:crypto';
import type Provider from 'oidc-provider';
import { LocalIdpError } from './errors.js';
import type { MemoryStore } from './memory-adapter.js';

export interface RegisterClientInput {
  tenantId: string;
  scopes: readonly string[];
  keyId?: string;
  name?: string;
  /** Default client_secret_post; oidc-provider also accepts Basic for either. */
  tokenEndpointAuthMethod?: 'client_secret_post' | 'client_secret_basic';
}

export interface RegisteredClient {
  clientId: string;
  clientSecret: string;
  /** RFC 7592 credentials for GET/PUT/DELETE on registrationClientUri. */
  registrationAccessToken: string;
  registrationClientUri: string;
}

export async function registerClient(registrationEndpoint: string, initialAccessToken: string, input: RegisterClientInput): Promise<RegisteredClient> {
  const body = {
    client_name: input.name ?? `latchkey-${input.tenantId}`,
    application_type: 'web',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: input.tokenEndpointAuthMethod ?? 'client_secret_post',
    scope: input.scopes.join(' '),
    tenant_id: input.tenantId,
    ...(input.keyId !== undefined ? { key_id: input.keyId } : {}),
  };
  let res: Response;
  try {
    res = await fetch(registrationEndpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${initialAccessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new LocalIdpError('not_running', `registration endpoint unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.status !== 201) {
    throw new LocalIdpError('registration_failed', `registration answered ${res.status}: ${String(json['error'])} ${String(json['error_description'] ?? '')}`.trim());
  }
  return {
    clientId: String(json['client_id']),
    clientSecret: String(json['client_secret']),
    registrationAccessToken: String(json['registration_access_token']),
    registrationClientUri: String(json['registration_client_uri']),
  };
}

/** Registered clients that carry a tenant and key id (Latchkey keys), optionally of one tenant or key. */
export function listKeyClients(store: MemoryStore, filter: { tenantId?: string; keyId?: string } = {}): { clientId: string; tenantId: string; keyId: string }[] {
  const out: { clientId: string; tenantId: string; keyId: string }[] = [];
  for (const v of store.valuesWithPrefix('Client:')) {
    const c = v as { client_id?: unknown; tenant_id?: unknown; key_id?: unknown };
    if (typeof c.client_id !== 'string' || typeof c.tenant_id !== 'string' || typeof c.key_id !== 'string') continue;
    if (filter.tenantId !== undefined && c.tenant_id !== filter.tenantId) continue;
    if (filter.keyId !== undefined && c.key_id !== filter.keyId) continue;
    out.push({ clientId: c.client_id, tenantId: c.tenant_id, keyId: c.key_id });
  }
  return out;
}

/** Removes a dynamically registered client; its next token request fails with invalid_client. */
export async function deleteClient(provider: Provider, clientId: string): Promise<boolean> {
  const stored = await provider.Client.adapter.find(clientId);
  if (!stored) return false;
  await provider.Client.adapter.destroy(clientId);
  return true;
}

/**
 * New secret, same client id (Auth0's rotate-secret). The old secret stops working at once.
 * oidc-provider caches clients by a hash of their metadata, so the change is seen immediately.
 */
export async function rotateClientSecret(provider: Provider, clientId: string): Promise<{ clientId: string; clientSecret: string }> {
  const stored = await provider.Client.adapter.find(clientId);
  if (!stored) throw new LocalIdpError('client_not_found', 'The client does not exist.');
  // Same shape as oidc-provider's own secretFactory.
  const clientSecret = randomBytes(64).toString('base64url');
  await provider.Client.adapter.upsert(clientId, { ...stored, client_secret: clientSecret });
  return { clientId, clientSecret };
}
