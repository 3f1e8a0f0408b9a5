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
}

export type ApiKeyStatus = 'active' | 'revoked';

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
  updateTenant(tenantId: string, patch: Partial<Pick<Tenant, 'name' | 'status'>>, updatedAt: string): Promise<Tenant | undefined>;
  putKey(k: ApiKeyRecord): Promise<void>;
  getKey(tenantId: string, keyId: string): Promise<ApiKeyRecord | undefined>;
  listKeys(tenantId: string): Promise<ApiKeyRecord[]>;
  /** Records a rotation: a new cache key and the rotation time. */
  recordRotation(tenantId: string, keyId: string, cacheKey: string, at: string): Promise<void>;
  markRevoked(tenantId: string, keyId: string, at: string): Promise<void>;
}

export class TenantExistsError extends Error {
  readonly code = 'ERR_TENANT_EXISTS';
}

export class InvalidCursorError extends Error {
  readonly code = 'ERR_INVALID_CURSOR';
  constructor() {
    super('the cursor is not valid');
  }
}
