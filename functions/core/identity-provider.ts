/**
 * The port through which tenant and user management reach the identity provider.
 * Adapters: Auth0 (Management API v2) and the local provider used by `npm start`.
 * Adapters throw `IdentityProviderError` for answers about the request and
 * `UpstreamUnavailableError` (from ./errors) for rate limits, 5xx and timeouts.
 */
import { LatchkeyError } from './errors.js';

/** A machine-to-machine client that backs one API key. */
export interface MachineClient {
  clientId: string;
  /** Present only in the answers of create and rotate. */
  clientSecret: string;
}

/** A machine client as the provider lists it: the tenant and key id from its metadata, never its secret. */
export interface ListedMachineClient {
  clientId: string;
  /** `undefined` for clients that are not Latchkey keys (no tenant or key id in their metadata). */
  tenantId: string | undefined;
  keyId: string | undefined;
}

export interface CreateMachineClientInput {
  /** Display name at the provider. */
  name: string;
  tenantId: string;
  /** Latchkey's key id, kept in the client's metadata for audits. */
  keyId: string;
  /** API audience the client is granted. */
  audience: string;
  scopes: string[];
}

export interface IdpUser {
  userId: string;
  email: string;
  name: string | undefined;
  /** From `app_metadata.tenant_id`; `undefined` when the user belongs to no tenant. */
  tenantId: string | undefined;
  /** From `app_metadata.roles`. */
  roles: string[];
  blocked: boolean;
  emailVerified: boolean;
  createdAt: string | undefined;
  lastLogin: string | undefined;
}

export interface CreateUserInput {
  tenantId: string;
  email: string;
  name?: string | undefined;
  /** When absent, the adapter sets an unguessable one; the user resets it by email. */
  password?: string | undefined;
  roles: string[];
}

export interface UpdateUserInput {
  name?: string | undefined;
  roles?: string[] | undefined;
  blocked?: boolean | undefined;
}

export interface ListUsersQuery {
  tenantId: string;
  /** Exact e-mail filter; adapters must escape it for their query language. */
  email?: string | undefined;
  /** Zero-based page. */
  page: number;
  perPage: number;
}

export interface UserPage {
  users: IdpUser[];
  total: number;
  page: number;
  perPage: number;
}

export interface IdentityProvider {
  createMachineClient(input: CreateMachineClientInput): Promise<MachineClient>;
  rotateClientSecret(clientId: string): Promise<MachineClient>;
  /** Deletes the client and its grants; a client that is already gone is not an error. */
  deleteMachineClient(clientId: string): Promise<void>;
  /**
   * Every machine client carrying a Latchkey key id (all pages), optionally only one tenant's or
   * one key's: how a retried key creation finds the client it made, and how the reconciler finds orphans.
   */
  listMachineClients(filter?: { tenantId?: string | undefined; keyId?: string | undefined }): Promise<ListedMachineClient[]>;
  createUser(input: CreateUserInput): Promise<IdpUser>;
  /** `undefined` when no such user exists. */
  getUser(userId: string): Promise<IdpUser | undefined>;
  listUsers(query: ListUsersQuery): Promise<UserPage>;
  updateUser(userId: string, patch: UpdateUserInput): Promise<IdpUser>;
  /** A user that is already gone is not an error. */
  deleteUser(userId: string): Promise<void>;
}

export type IdentityProviderErrorCode =
  | 'ERR_IDP_NOT_FOUND'
  | 'ERR_IDP_CONFLICT'
  | 'ERR_IDP_INVALID'
  | 'ERR_IDP_FORBIDDEN';

/** The provider refused the request itself (not a transient failure). */
export class IdentityProviderError extends LatchkeyError {
  readonly status: number;
  constructor(code: IdentityProviderErrorCode, message: string, status: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

/**
 * What a provider's 4xx answer means: 404 not found, 409 conflict, 401/403 the provider refused
 * Latchkey's own credentials or scopes (our misconfiguration, never the caller's fault), any
 * other 4xx an invalid request.
 */
export function identityProviderErrorFor(status: number, message: string, options?: { cause?: unknown }): IdentityProviderError {
  const code: IdentityProviderErrorCode =
    status === 404 ? 'ERR_IDP_NOT_FOUND' : status === 409 ? 'ERR_IDP_CONFLICT' : status === 401 || status === 403 ? 'ERR_IDP_FORBIDDEN' : 'ERR_IDP_INVALID';
  return new IdentityProviderError(code, message, status, options);
}
