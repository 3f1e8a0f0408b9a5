/**
 * The life of an API key and of its tenant, as one unit the routes call: issue, rotate, revoke,
 * disable and delete, each with the principal-state writes that make it hold on every path.
 *
 * A key is one machine client at the identity provider. Rotation issues a **successor client**
 * (same key id, new client id and secret) and retires the old client: at once, or when the
 * grace ends. Auth0 keeps one secret per client, so rotating the secret in place would make the
 * tokens of the old and the new secret indistinguishable to the authorizer, and a holder of the
 * old secret could fetch tokens until the not-before was written; with a successor, the old
 * credentials are a different client whose revocation the state carries exactly.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from './clock.js';
import { LatchkeyError } from './errors.js';
import type { IdentityProvider, MachineClient } from './identity-provider.js';
import type { Log } from './log.js';
import { grantableScopes } from './permissions.js';
import { isTenantDeleted, type PrincipalState, type PrincipalStateWriter } from './principal-state.js';
import type { Principal } from './principal.js';
import { ConcurrentChangeError, type ApiKeyRecord, type Tenant, type TenantStatus, type TenantStore } from './tenant-store.js';
import type { TokenCacheMaintenance } from './token-cache.js';
import { credentialsCacheKey } from './token-crypto.js';

export type ManagementErrorCode = 'ERR_NOT_FOUND' | 'ERR_CONFLICT' | 'ERR_INVALID' | 'ERR_FORBIDDEN';

/** A management request that cannot be carried out as asked (404, 409, 400, 403). */
export class ManagementError extends LatchkeyError {
  declare readonly code: ManagementErrorCode;
  constructor(code: ManagementErrorCode, message: string) {
    super(code, message);
  }
}

/** The longest rotation grace: a day, as Auth0's default token lifetime. */
export const MAX_ROTATION_GRACE_S = 24 * 3600;

export interface KeyLifecycleDeps {
  store: TenantStore;
  /** Resolved lazily: the provider's credentials are read on first use. */
  idp: () => Promise<IdentityProvider>;
  states: PrincipalStateWriter;
  tokens: TokenCacheMaintenance;
  /** Flushes API Gateway's authorizer cache of the stage (REST result cache), when there is one. */
  flushAuthorizerCache?: (() => Promise<void>) | undefined;
  clock: Clock;
  log: Log;
  /** Audience the keys' clients are granted. */
  audience: string;
  /** Scopes a key may be given. */
  keyScopes: readonly string[];
}

/** How long a key may stay `pending` before the reconciler deletes its client: far longer than one creation takes. */
export const PENDING_KEY_GRACE_MS = 15 * 60_000;

/** What the reconciler did: the provider clients it deleted, and why. */
export interface ReconcileReport {
  deleted: { clientId: string; tenantId: string; keyId: string; reason: 'no-record' | 'pending-too-long' | 'key-revoked' }[];
  /** Clients it looked at (those carrying a Latchkey key id). */
  examined: number;
}

export interface IssuedKey {
  record: ApiKeyRecord;
  credentials: MachineClient;
}

const newKeyId = () => `key_${randomBytes(12).toString('base64url')}`;
/**
 * With an Idempotency-Key (already scoped to the caller and the route), the key id follows from
 * it: a retry after the idempotency record expired meets the same key id, so the record and the
 * provider client of the first attempt, instead of making another.
 */
const keyIdFor = (tenantId: string, idempotencyKey: string) => `key_${createHash('sha256').update(`${tenantId}\u0000${idempotencyKey}`).digest().subarray(0, 12).toString('base64url')}`;
const sameScopes = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((s, i) => s === [...b].sort()[i]);
const iso = (ms: number) => new Date(ms).toISOString();

export class KeyLifecycle {
  readonly #d: KeyLifecycleDeps;

  constructor(deps: KeyLifecycleDeps) {
    this.#d = deps;
  }

  /** The tenant, if it exists (404) and is active (409). */
  async activeTenant(tenantId: string): Promise<Tenant> {
    const tenant = await this.#d.store.getTenant(tenantId);
    if (!tenant) throw new ManagementError('ERR_NOT_FOUND', 'the tenant was not found');
    if (tenant.status !== 'active') throw new ManagementError('ERR_CONFLICT', 'the tenant is disabled');
    return tenant;
  }

  /**
   * Issues a key without ever leaving a provider client nothing knows of: a `pending` record
   * first, then the client, then the record made active. A retry (same Idempotency-Key, even
   * after its record expired) finds the pending record and the client by key id, and gives that
   * client a new secret (nobody saw the first: the key was never answered) instead of making another.
   */
  async issue(caller: Principal, tenantId: string, input: { name: string; scopes: string[] }, opts: { idempotencyKey?: string | undefined } = {}): Promise<IssuedKey> {
    await this.activeTenant(tenantId);
    const grant = grantableScopes(caller, input.scopes, this.#d.keyScopes);
    if (!grant.ok) throw new ManagementError('ERR_INVALID', `these scopes cannot be given to a key: ${grant.notAllowed.join(' ')}`);
    const keyId = opts.idempotencyKey !== undefined ? keyIdFor(tenantId, opts.idempotencyKey) : newKeyId();
    const now = this.#d.clock.now();
    const pending: ApiKeyRecord = {
      tenantId,
      keyId,
      name: input.name,
      clientId: '',
      scopes: input.scopes,
      status: 'pending',
      createdAt: iso(now),
      createdBy: caller.subject,
      cacheKeys: [],
      retiring: [],
    };
    const existing = await this.#d.store.putPendingKey(pending);
    if (existing && existing.status !== 'pending') throw new ManagementError('ERR_CONFLICT', 'a key was already issued for this Idempotency-Key; list the keys');
    if (existing && (existing.name !== input.name || !sameScopes(existing.scopes, input.scopes))) {
      throw new ManagementError('ERR_CONFLICT', 'this Idempotency-Key was used for a different key');
    }
    const record = existing ?? pending;
    const credentials = existing ? await this.#resumeClient(tenantId, keyId, input) : await this.#newClient(tenantId, keyId, input.name, input.scopes);
    const cacheKey = credentialsCacheKey(credentials);
    try {
      await this.#d.store.activateKey(tenantId, keyId, { clientId: credentials.clientId, cacheKey });
    } catch (err) {
      // The record stays pending: a retry finds this client, and the reconciler removes it if none comes.
      this.#d.log.warn('API key left pending', { tenantId, keyId, clientId: credentials.clientId, error: String(err) });
      if (err instanceof ConcurrentChangeError) throw new ManagementError('ERR_CONFLICT', 'the key was changed by another request; list the keys and retry');
      throw err;
    }
    this.#d.log.info('API key issued', { tenantId, keyId, clientId: credentials.clientId, retried: existing !== undefined });
    return { record: { ...record, clientId: credentials.clientId, status: 'active', cacheKeys: [cacheKey] }, credentials };
  }

  /**
   * A retried creation: the client an earlier attempt made for the key id gets a new secret (and a
   * not-before, so nothing fetched with the old one is served); any extra clients are removed. None: a new client.
   */
  async #resumeClient(tenantId: string, keyId: string, input: { name: string; scopes: string[] }): Promise<MachineClient> {
    const idp = await this.#d.idp();
    const [found, ...extra] = await idp.listMachineClients({ tenantId, keyId });
    const now = this.#d.clock.now();
    for (const c of extra) await this.#retireClient(c.clientId, now);
    if (!found) return this.#newClient(tenantId, keyId, input.name, input.scopes);
    const credentials = await idp.rotateClientSecret(found.clientId);
    await this.#d.states.putState({ ...clientState(credentials.clientId, tenantId, keyId, 'active', 0, now), notBefore: now, createdAt: now });
    this.#d.log.info('API key creation resumed with the client of an earlier attempt', { tenantId, keyId, clientId: found.clientId });
    return credentials;
  }

  /**
   * Deletes provider clients that carry a Latchkey key id but whose key has no record, stayed
   * pending past `pendingGraceMs`, or is revoked; each is revoked in the principal state first, so
   * no path admits it meanwhile. Clients without a tenant and key id in their metadata are never
   * touched. A rotation's successor between its creation and its record is not judged here.
   */
  async reconcileOrphans(opts: { tenantId?: string | undefined; pendingGraceMs?: number } = {}): Promise<ReconcileReport> {
    const idp = await this.#d.idp();
    const graceMs = opts.pendingGraceMs ?? PENDING_KEY_GRACE_MS;
    const clients = await idp.listMachineClients(opts.tenantId !== undefined ? { tenantId: opts.tenantId } : undefined);
    const report: ReconcileReport = { deleted: [], examined: 0 };
    const records = new Map<string, ApiKeyRecord | undefined>();
    for (const c of clients) {
      if (c.tenantId === undefined || c.keyId === undefined) continue;
      report.examined++;
      const id = `${c.tenantId}\u0000${c.keyId}`;
      if (!records.has(id)) records.set(id, await this.#d.store.getKey(c.tenantId, c.keyId));
      const key = records.get(id);
      const now = this.#d.clock.now();
      const reason = !key
        ? 'no-record'
        : key.status === 'revoked'
          ? 'key-revoked'
          : key.status === 'pending' && now - Date.parse(key.createdAt) > graceMs
            ? 'pending-too-long'
            : undefined;
      if (!reason) continue;
      await this.#retireClient(c.clientId, now, key ?? undefined);
      if (key?.status === 'pending') await this.#d.store.deletePendingKey(c.tenantId, c.keyId);
      this.#d.log.info('orphaned provider client deleted', { clientId: c.clientId, tenantId: c.tenantId, keyId: c.keyId, reason });
      report.deleted.push({ clientId: c.clientId, tenantId: c.tenantId, keyId: c.keyId, reason });
    }
    this.#d.log.info('orphan reconciliation done', { tenantId: opts.tenantId ?? null, examined: report.examined, deleted: report.deleted.length });
    return report;
  }

  /**
   * A new client for the key; the old one keeps working for `graceS` seconds (0: it stops now,
   * within the revocation bound), then is refused on every path and deleted at the provider.
   */
  async rotate(caller: Principal, tenantId: string, keyId: string, graceS: number): Promise<IssuedKey> {
    if (!Number.isInteger(graceS) || graceS < 0 || graceS > MAX_ROTATION_GRACE_S) {
      throw new ManagementError('ERR_INVALID', `graceSeconds must be a whole number from 0 to ${MAX_ROTATION_GRACE_S}`);
    }
    await this.activeTenant(tenantId);
    const key = await this.#activeKey(tenantId, keyId);
    const grant = grantableScopes(caller, key.scopes, key.scopes);
    if (!grant.ok) throw new ManagementError('ERR_FORBIDDEN', `you cannot rotate a key with these scopes: ${grant.notAllowed.join(' ')}`);
    const credentials = await this.#newClient(tenantId, keyId, key.name, key.scopes);
    const now = this.#d.clock.now();
    const retireAt = now + graceS * 1000;
    // The old client is revoked from the end of the grace on; the state says so before the
    // registry does, so a failure below leaves the key safe (retried rotations issue another successor).
    await this.#d.states.putState(clientState(key.clientId, tenantId, keyId, 'revoked', retireAt, now));
    const cacheKey = credentialsCacheKey(credentials);
    try {
      await this.#d.store.recordRotation(tenantId, keyId, { previousClientId: key.clientId, clientId: credentials.clientId, cacheKey, retireAt, at: iso(now) });
    } catch (err) {
      // Another rotation won the race: this successor must not outlive the answer.
      await this.#retireClient(credentials.clientId, now, key).catch(() => undefined);
      if (err instanceof ConcurrentChangeError) throw new ManagementError('ERR_CONFLICT', 'the key was rotated by another request; list the keys and retry');
      throw err;
    }
    if (graceS === 0) await this.#retireDue(tenantId, keyId, now);
    await this.#flush();
    this.#d.log.info('API key rotated', { tenantId, keyId, clientId: credentials.clientId, previousClientId: key.clientId, graceS });
    const record: ApiKeyRecord = {
      ...key,
      clientId: credentials.clientId,
      rotatedAt: iso(now),
      cacheKeys: [...key.cacheKeys, cacheKey],
      retiring: graceS === 0 ? key.retiring : [...key.retiring, { clientId: key.clientId, retireAt }],
    };
    return { record, credentials };
  }

  /** Revokes the key and every client it still has; revoking a revoked key changes nothing. */
  async revoke(caller: Principal, tenantId: string, keyId: string): Promise<void> {
    const key = await this.#d.store.getKey(tenantId, keyId);
    // A pending key was never issued (its creation is retried or reconciled): not the caller's to see.
    if (!key || key.status === 'pending') throw new ManagementError('ERR_NOT_FOUND', 'the API key was not found');
    const grant = grantableScopes(caller, key.scopes, key.scopes);
    if (!grant.ok) throw new ManagementError('ERR_FORBIDDEN', `you cannot revoke a key with these scopes: ${grant.notAllowed.join(' ')}`);
    if (key.status !== 'active') return;
    await this.#revokeKey(key);
    await this.#flush();
  }

  async list(tenantId: string): Promise<{ key: ApiKeyRecord; lastUsedAt: number | undefined }[]> {
    if (!(await this.#d.store.getTenant(tenantId))) throw new ManagementError('ERR_NOT_FOUND', 'the tenant was not found');
    const now = this.#d.clock.now();
    // Pending keys were never answered: not the caller's yet.
    let keys = (await this.#d.store.listKeys(tenantId)).filter((k) => k.status !== 'pending');
    // Graces that ended since the last visit: their old clients leave the provider now.
    const due = keys.filter((k) => k.retiring.some((r) => r.retireAt <= now));
    for (const k of due) await this.#retireDue(tenantId, k.keyId, now).catch((err: unknown) => this.#d.log.warn('could not retire old clients', { keyId: k.keyId, error: String(err) }));
    if (due.length > 0) keys = (await this.#d.store.listKeys(tenantId)).filter((k) => k.status !== 'pending');
    const lastUsed = keys.length > 0 ? await this.#d.tokens.lastUsed(keys.map((k) => k.clientId)) : new Map<string, number>();
    return keys.map((key) => {
      const used = lastUsed.get(key.clientId);
      const revokedAt = key.revokedAt === undefined ? undefined : Date.parse(key.revokedAt);
      // "Last used" is never later than the revocation, whatever order the writes landed in.
      return { key, lastUsedAt: used !== undefined && revokedAt !== undefined ? Math.min(used, revokedAt) : used };
    });
  }

  /** Whether the tenant was deleted (`DELETE /tenants/{id}`): its registry record only says disabled, its state says deleted. */
  async isDeleted(tenantId: string): Promise<boolean> {
    return isTenantDeleted(await this.#d.states.getState('tenant', tenantId));
  }

  /** Disables or re-enables a tenant: its keys and users are refused (403) or admitted again on every path. A deleted tenant stays deleted (409). */
  async setTenantStatus(tenantId: string, status: TenantStatus, name?: string): Promise<Tenant> {
    const now = this.#d.clock.now();
    const existing = await this.#d.store.getTenant(tenantId);
    if (!existing) throw new ManagementError('ERR_NOT_FOUND', 'the tenant was not found');
    if (await this.isDeleted(tenantId)) throw new ManagementError('ERR_CONFLICT', 'the tenant is deleted');
    // Restrictive changes reach the authorizers first; enabling comes after the registry says so.
    if (status === 'disabled') await this.#d.states.putState(tenantState(tenantId, 'disabled', now));
    const tenant = await this.#d.store.updateTenant(tenantId, { status, ...(name !== undefined ? { name } : {}) }, iso(now));
    if (!tenant) throw new ManagementError('ERR_NOT_FOUND', 'the tenant was not found');
    if (status === 'active' && existing.status !== 'active') await this.#d.states.putState(tenantState(tenantId, 'active', now));
    if (status !== existing.status) await this.#flush();
    return tenant;
  }

  /** Deletes a tenant: disabled for good, every key revoked, its users' tokens refused. */
  async deleteTenant(tenantId: string): Promise<void> {
    const now = this.#d.clock.now();
    if (!(await this.#d.store.getTenant(tenantId))) throw new ManagementError('ERR_NOT_FOUND', 'the tenant was not found');
    await this.#d.states.putState(tenantState(tenantId, 'deleted', now));
    await this.#d.store.updateTenant(tenantId, { status: 'disabled' }, iso(now));
    for (const k of await this.#d.store.listKeys(tenantId)) if (k.status === 'active') await this.#revokeKey(k);
    await this.#flush();
  }

  async #activeKey(tenantId: string, keyId: string): Promise<ApiKeyRecord> {
    const key = await this.#d.store.getKey(tenantId, keyId);
    if (!key || key.status === 'pending') throw new ManagementError('ERR_NOT_FOUND', 'the API key was not found');
    if (key.status !== 'active') throw new ManagementError('ERR_CONFLICT', 'the API key is revoked');
    return key;
  }

  async #newClient(tenantId: string, keyId: string, name: string, scopes: string[]): Promise<MachineClient> {
    const idp = await this.#d.idp();
    const credentials = await idp.createMachineClient({ name: `${tenantId} ${name}`.slice(0, 128), tenantId, keyId, audience: this.#d.audience, scopes });
    // The key's record in the state: it makes the client a Latchkey key on both paths, and its
    // creation time lets the authorizer tell "not accepted yet" from "wrong".
    const now = this.#d.clock.now();
    try {
      await this.#d.states.putState({ ...clientState(credentials.clientId, tenantId, keyId, 'active', 0, now), createdAt: now });
    } catch (err) {
      await idp.deleteMachineClient(credentials.clientId).catch(() => undefined);
      throw err;
    }
    return credentials;
  }

  async #revokeKey(k: ApiKeyRecord): Promise<void> {
    const now = this.#d.clock.now();
    // Order matters: the state first, so no cache or path serves the key once this returns.
    for (const clientId of [k.clientId, ...k.retiring.map((r) => r.clientId)]) await this.#retireClient(clientId, now, k);
    await this.#d.tokens.purge(k.cacheKeys);
    await this.#d.store.markRevoked(k.tenantId, k.keyId, iso(now));
    this.#d.log.info('API key revoked', { tenantId: k.tenantId, keyId: k.keyId, clientId: k.clientId });
  }

  /** Old clients whose grace has ended: revoked in the state (already, from `retireAt`) and deleted at the provider. */
  async #retireDue(tenantId: string, keyId: string, now: number): Promise<void> {
    const key = await this.#d.store.getKey(tenantId, keyId);
    const due = key?.retiring.filter((r) => r.retireAt <= now) ?? [];
    if (due.length === 0) return;
    const idp = await this.#d.idp();
    for (const r of due) await idp.deleteMachineClient(r.clientId);
    await this.#d.store.removeRetiring(tenantId, keyId, due.map((r) => r.clientId));
  }

  async #retireClient(clientId: string, now: number, k?: ApiKeyRecord): Promise<void> {
    await this.#d.states.putState(clientState(clientId, k?.tenantId, k?.keyId, 'revoked', now, now));
    await (await this.#d.idp()).deleteMachineClient(clientId);
  }

  async #flush(): Promise<void> {
    if (!this.#d.flushAuthorizerCache) return;
    // The authorizer's own bound still holds if this fails; say so in the log and go on.
    await this.#d.flushAuthorizerCache().catch((err: unknown) => this.#d.log.warn('could not flush the authorizer cache', { error: String(err) }));
  }
}

function clientState(clientId: string, tenantId: string | undefined, keyId: string | undefined, status: 'active' | 'revoked', revokedAt: number, now: number): PrincipalState {
  return { kind: 'client', id: clientId, status, revokedAt, notBefore: 0, changedAt: now, tenantId, keyId };
}

function tenantState(tenantId: string, status: 'active' | 'disabled' | 'deleted', now: number): PrincipalState {
  return { kind: 'tenant', id: tenantId, status, revokedAt: 0, notBefore: 0, changedAt: now };
}
