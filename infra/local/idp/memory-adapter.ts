/**
 * oidc-provider storage in a Map. Replaces the built-in memory adapter because that one is an
 * LRU capped at 1,000 entries (registered clients could silently fall out during a long
 * `npm start`), and because one store must outlive a provider instance: signing-key rotation
 * builds a new provider over the same clients, sessions and grants.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  value: unknown;
  expiresAt: number;
}

/** Models whose records are indexed by grant id, for revokeByGrantId. */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
const SWEEP_EVERY = 200;

/** Set while oidc-provider serves a token request: where new client credentials may not be known yet. */
export const tokenRequestScope = new AsyncLocalStorage<true>();

export class MemoryStore {
  readonly #entries = new Map<string, Entry>();
  #writes = 0;
  /** When each client's credentials were last written (registration, secret rotation), epoch ms. */
  readonly #credentialsWrittenAt = new Map<string, number>();
  /**
   * Auth0 documents that new client credentials may take up to 30 s to be accepted: for this
   * long after a client's credentials are written, the token endpoint does not know them.
   */
  credentialPropagationMs = 0;

  /** Records a write of a client's credentials. */
  credentialsWritten(clientId: string): void {
    this.#credentialsWrittenAt.set(clientId, Date.now());
  }

  /** True while a client's new credentials are not yet accepted by the token endpoint. */
  propagating(clientId: string): boolean {
    const at = this.#credentialsWrittenAt.get(clientId);
    return at !== undefined && Date.now() < at + this.credentialPropagationMs;
  }

  get(key: string): unknown {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: unknown, expiresInS?: number): void {
    const expiresAt = expiresInS === undefined ? Infinity : Date.now() + expiresInS * 1000;
    this.#entries.set(key, { value, expiresAt });
    if (++this.#writes % SWEEP_EVERY === 0) this.#sweep();
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Live values whose key starts with `prefix` (e.g. `Client:`). */
  valuesWithPrefix(prefix: string): unknown[] {
    const now = Date.now();
    const out: unknown[] = [];
    for (const [k, e] of this.#entries) if (k.startsWith(prefix) && e.expiresAt > now) out.push(e.value);
    return out;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k);
  }

  /** A factory for oidc-provider's `adapter` setting (called with each model's name). */
  adapterFactory(): (model: string) => Adapter {
    return (model) => new MemoryAdapter(model, this);
  }
}

class MemoryAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly store: MemoryStore,
  ) {}

  #key(id: string): string {
    return `${this.model}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const key = this.#key(id);
    if (this.model === 'Session' && typeof payload.uid === 'string') this.store.set(`sessionUid:${payload.uid}`, id, expiresIn);
    if (typeof payload.userCode === 'string') this.store.set(`userCode:${payload.userCode}`, id, expiresIn);
    if (GRANTABLE.has(this.model) && typeof payload.grantId === 'string') {
      const gk = `grant:${payload.grantId}`;
      const members = (this.store.get(gk) as Set<string> | undefined) ?? new Set<string>();
      members.add(key);
      // The index lives as long as grants do; members that expired are simply not found.
      this.store.set(gk, members);
    }
    this.store.set(key, payload, expiresIn);
    if (this.model === 'Client') this.store.credentialsWritten(id);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.model === 'Client' && tokenRequestScope.getStore() && this.store.propagating(id)) return undefined;
    return this.store.get(this.#key(id)) as AdapterPayload | undefined;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = this.store.get(`sessionUid:${uid}`);
    return typeof id === 'string' ? this.find(id) : undefined;
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = this.store.get(`userCode:${userCode}`);
    return typeof id === 'string' ? this.find(id) : undefined;
  }

  async consume(id: string): Promise<void> {
    const payload = await this.find(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(this.#key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const gk = `grant:${grantId}`;
    const members = this.store.get(gk) as Set<string> | undefined;
    for (const key of members ?? []) this.store.delete(key);
    this.store.delete(gk);
  }
}
