/**
 * The registry of tenants and their API keys. Adapter: `DynamoDbTenantStore`.
 */
export type TenantStatus = 'active' | 'disabled';

export interface Tenant {
  tenantId: string;
  name: string;
  status: TenantStatus;
  createdAt: string;
  updatedAt: string;
  /** Usage plan (tier) whose limits apply to the tenant on the REST API; absent where no plans are deployed. */
  plan?: string | undefined;
}

/**
 * `pending`: written before the provider is asked for a client, so a crash between the two never
 * leaves a client nothing knows of; made `active` once the client exists (the reconciler deletes
 * clients of keys pending for too long).
 */
export type ApiKeyStatus = 'pending' | 'active' | 'revoked';

export interface ApiKeyRecord {
  tenantId: string;
  keyId: string;
  name: string;
  clientId: string;
  scopes: string[];
  status: ApiKeyStatus;
  createdAt: string;
  createdBy: string;
  rotatedAt?: string | undefined;
  revokedAt?: string | undefined;
  /** Token-cache keys of the secrets issued for this key, so revocation can purge them. */
  cacheKeys: string[];
  /** Clients replaced by a rotation whose grace has not been retired yet (deleted at the provider after `retireAt`, epoch ms). */
  retiring: { clientId: string; retireAt: number }[];
}

export interface RotationRecord {
  previousClientId: string;
  clientId: string;
  cacheKey: string;
  /** Epoch ms at which the previous client stops. */
  retireAt: number;
  at: string;
}

export interface Page<T> {
  items: T[];
  /** Opaque; pass back to get the next page. */
  cursor: string | undefined;
}

export interface TenantStore {
  /** Throws `TenantExistsError` when the id is taken. */
  createTenant(t: Tenant): Promise<void>;
  getTenant(tenantId: string): Promise<Tenant | undefined>;
  /** Throws `InvalidCursorError` for a cursor this store did not hand out. */
  listTenants(limit: number, cursor: string | undefined): Promise<Page<Tenant>>;
  updateTenant(tenantId: string, patch: Partial<Pick<Tenant, 'name' | 'status' | 'plan'>>, updatedAt: string): Promise<Tenant | undefined>;
  putKey(k: ApiKeyRecord): Promise<void>;
  /**
   * Writes a `pending` record unless one exists for the key id; returns the existing record then
   * (a retried creation), else `undefined`.
   */
  putPendingKey(k: ApiKeyRecord): Promise<ApiKeyRecord | undefined>;
  /** Makes a pending key active with its client. Throws `ConcurrentChangeError` when it is no longer pending. */
  activateKey(tenantId: string, keyId: string, a: { clientId: string; cacheKey: string }): Promise<void>;
  /** Removes a pending key whose creation failed for good (its client is gone). */
  deletePendingKey(tenantId: string, keyId: string): Promise<void>;
  getKey(tenantId: string, keyId: string): Promise<ApiKeyRecord | undefined>;
  listKeys(tenantId: string): Promise<ApiKeyRecord[]>;
  /**
   * Records a rotation: the successor client, its cache key, the previous client among the
   * retiring ones. Throws `ConcurrentChangeError` when the key's client is no longer `previousClientId`.
   */
  recordRotation(tenantId: string, keyId: string, r: RotationRecord): Promise<void>;
  /** Forgets retiring clients that have been deleted at the provider. */
  removeRetiring(tenantId: string, keyId: string, clientIds: string[]): Promise<void>;
  markRevoked(tenantId: string, keyId: string, at: string): Promise<void>;
}

export class TenantExistsError extends Error {
  readonly code = 'ERR_TENANT_EXISTS';
}

export class ConcurrentChangeError extends Error {
  readonly code = 'ERR_CONCURRENT_CHANGE';
  constructor() {
    super('the record was changed by another request');
  }
}

export class InvalidCursorError extends Error {
  readonly code = 'ERR_INVALID_CURSOR';
  constructor() {
    super('the cursor is not valid');
  }
}
