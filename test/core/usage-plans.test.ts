/**
 * Tenants' usage keys: the derived values the authorizer returns, and the provisioner's path
 * through API Gateway's rate limits (spaced calls, back-off on throttling, 503 with Retry-After
 * when the budget runs out, idempotent retries, a plan move that puts the key back on failure).
 * Time is a manual clock: the provisioner's sleeps advance it.
 */
import { describe, expect, it } from 'vitest';
import { UpstreamUnavailableError } from '../../functions/core/errors.js';
import { restAllow } from '../../functions/core/decision.js';
import { orHang } from '../support/hang.js';
import {
  API_KEY_VALUE_PATTERN,
  backfillUsageKeys,
  GatewayThrottledError,
  KeyInOtherPlanError,
  parseUsagePlanNames,
  tenantUsageKeyValue,
  UnknownPlanError,
  UsageKeyDeriver,
  UsageKeyExistsError,
  UsageKeyProvisioner,
  type GatewayApiKey,
  type UsageKeyGateway,
} from '../../functions/core/usage-plans.js';
import { silentLog } from '../../functions/core/log.js';
import { ManualClock } from '../support/clock.js';

const SECRET = 'a-deployment-secret-of-at-least-32-characters';

/** API Gateway in memory: keys by name, one plan per key, and a script of throttling answers. */
class FakeGateway implements UsageKeyGateway {
  readonly keys = new Map<string, GatewayApiKey & { value: string }>();
  /** Keys of another deployment in the same account (same names possible, other values). */
  readonly foreign: (GatewayApiKey & { value: string })[] = [];
  readonly planOf = new Map<string, string>();
  readonly calls: { op: string; at: number }[] = [];
  /** Ops that answer TooManyRequests this many more times. */
  readonly throttle = new Map<string, number>();
  failAttach: string | undefined;
  /** Ops whose calls never answer until `unhang()`. */
  readonly hang = new Set<string>();
  readonly #hung: (() => void)[] = [];
  /** findKey misses this many more times (GetApiKeys lags a creation, or a concurrent one is under way). */
  hideFromFind = 0;
  constructor(private readonly clock: ManualClock) {}
  unhang() {
    this.hang.clear();
    this.#hung.splice(0).forEach((go) => go());
  }
  async #enter(op: string) {
    this.calls.push({ op, at: this.clock.now() });
    if (this.hang.has(op)) await new Promise<void>((go) => this.#hung.push(go));
    const left = this.throttle.get(op) ?? 0;
    if (left > 0) {
      this.throttle.set(op, left - 1);
      throw new GatewayThrottledError('throttled', undefined);
    }
  }
  async findPlan(name: string) {
    await this.#enter('findPlan');
    return { 'stack-free': 'p-free', 'stack-standard': 'p-standard' }[name];
  }
  async findKey(name: string, value: string) {
    await this.#enter('findKey');
    if (this.hideFromFind > 0 && this.hideFromFind--) return undefined;
    const k = this.keys.get(name) ?? this.foreign.find((f) => f.name === name && f.value === value);
    return k && k.value === value ? { id: k.id, name: k.name } : undefined;
  }
  async createKey(name: string, value: string) {
    await this.#enter('createKey');
    // API Gateway refuses a second key with the same value (ConflictException).
    if ([...this.keys.values()].some((k) => k.value === value)) throw new UsageKeyExistsError();
    const key = { id: `k${this.keys.size + 1}`, name, value };
    this.keys.set(name, key);
    return { id: key.id, name };
  }
  async attachKey(planId: string, keyId: string) {
    await this.#enter('attachKey');
    if (this.failAttach === planId) throw new Error('boom');
    // What the adapter reports when API Gateway refuses a key in two plans of one stage.
    if (this.planOf.has(keyId) && this.planOf.get(keyId) !== planId) throw new KeyInOtherPlanError(planId, keyId);
    this.planOf.set(keyId, planId);
  }
  async detachKey(planId: string, keyId: string) {
    await this.#enter('detachKey');
    if (this.planOf.get(keyId) === planId) this.planOf.delete(keyId);
  }
  /** Requests served per key and day (GetUsage). */
  readonly served = new Map<string, Map<string, number>>();
  async usage(_planId: string, keyId: string, startDate: string, endDate: string) {
    await this.#enter('usage');
    return new Map([...(this.served.get(keyId) ?? new Map<string, number>())].filter(([day]) => day >= startDate && day <= endDate));
  }
  async deleteKey(keyId: string) {
    await this.#enter('deleteKey');
    for (const [name, k] of this.keys) if (k.id === keyId) this.keys.delete(name);
    this.planOf.delete(keyId);
  }
}

function setup(budgetMs = 4000) {
  const clock = new ManualClock();
  const gateway = new FakeGateway(clock);
  const provisioner = new UsageKeyProvisioner({
    gateway,
    clock,
    sleep: async (ms) => clock.advance(ms),
    secret: SECRET,
    plans: ['free', 'standard'],
    namePrefix: 'stack',
    budgetMs,
  });
  return { clock, gateway, provisioner };
}

describe('usage key values', () => {
  it('derives one stable value per tenant and deployment secret, never the secret itself, long enough for API Gateway', () => {
    const a = tenantUsageKeyValue(SECRET, 'acme');
    expect(a).toBe(tenantUsageKeyValue(SECRET, 'acme'));
    expect(a).not.toBe(tenantUsageKeyValue(SECRET, 'acme2'));
    expect(a).not.toBe(tenantUsageKeyValue(`${SECRET}x`, 'acme'));
    expect(a).not.toContain(SECRET);
    expect(a.length).toBeGreaterThanOrEqual(20);
    expect(a).toMatch(/^lkt[0-9a-f]{64}$/);
    expect(a).toMatch(API_KEY_VALUE_PATTERN);
  });

  it('gives callers without a tenant the platform key, and puts the value in REST decisions as usageIdentifierKey', () => {
    const d = new UsageKeyDeriver(SECRET, 'platform-key-value-0000000000');
    expect(d.keyFor(undefined)).toBe('platform-key-value-0000000000');
    expect(d.keyFor('')).toBe('platform-key-value-0000000000');
    expect(d.keyFor('acme')).toBe(tenantUsageKeyValue(SECRET, 'acme'));
    const principal = { subject: 's', tenantId: 'acme', userId: 's', clientId: 'c', roles: [], scopes: [], authMethod: 'jwt' as const, expiresAt: 0, issuedAtMs: 0 };
    const arn = 'arn:aws:execute-api:us-east-1:1:api/v1/GET/me';
    expect(restAllow(arn, principal, d.keyFor('acme')).usageIdentifierKey).toBe(tenantUsageKeyValue(SECRET, 'acme'));
    expect(restAllow(arn, principal)).not.toHaveProperty('usageIdentifierKey');
  });

  it('parses plan names and refuses the platform plan or bad names as tenant plans', () => {
    expect(parseUsagePlanNames('free, standard,free')).toEqual(['free', 'standard']);
    expect(() => parseUsagePlanNames('platform')).toThrow(/not a tenant plan/);
    expect(() => parseUsagePlanNames('Gold')).toThrow(/not a tenant plan/);
    expect(() => parseUsagePlanNames(' , ')).toThrow(/no plan/);
  });
});

describe('UsageKeyProvisioner', () => {
  it('creates the key with the derived value and attaches it; a second call finds it and creates nothing', async () => {
    const { gateway, provisioner } = setup();
    const key = await provisioner.provision('acme', 'free');
    expect(gateway.keys.get('stack-tenant-acme')).toMatchObject({ id: key.id, value: tenantUsageKeyValue(SECRET, 'acme') });
    expect(gateway.planOf.get(key.id)).toBe('p-free');
    await provisioner.provision('acme', 'free');
    expect(gateway.calls.filter((c) => c.op === 'createKey')).toHaveLength(1);
    // Plan ids are looked up once per container.
    expect(gateway.calls.filter((c) => c.op === 'findPlan')).toHaveLength(1);
  });

  it('spaces its calls (CreateApiKey is limited account-wide) and backs off on throttling', async () => {
    const { gateway, provisioner } = setup();
    gateway.throttle.set('createKey', 2);
    await provisioner.provision('acme', 'free');
    const creates = gateway.calls.filter((c) => c.op === 'createKey').map((c) => c.at);
    expect(creates).toHaveLength(3);
    expect(creates[1]! - creates[0]!).toBeGreaterThanOrEqual(200);
    expect(creates[2]! - creates[1]!).toBeGreaterThanOrEqual(400);
    const all = gateway.calls.map((c) => c.at);
    for (let i = 1; i < all.length; i++) expect(all[i]! - all[i - 1]!).toBeGreaterThanOrEqual(250);
  });

  it('answers 503 with Retry-After when API Gateway keeps throttling past the budget, and a later retry finishes the job', async () => {
    const { clock, gateway, provisioner } = setup(2000);
    gateway.throttle.set('attachKey', 100);
    const err = await provisioner.provision('acme', 'free').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).retryAfterS).toBeGreaterThanOrEqual(1);
    gateway.throttle.clear();
    clock.advance(10_000);
    const key = await provisioner.provision('acme', 'free');
    expect(gateway.planOf.get(key.id)).toBe('p-free');
    expect(gateway.calls.filter((c) => c.op === 'createKey')).toHaveLength(1);
  });

  it('moves a key between plans (detach, attach), and puts it back on its plan when the new one fails', async () => {
    const { gateway, provisioner } = setup();
    const key = await provisioner.provision('acme', 'free');
    await provisioner.move('acme', 'free', 'standard');
    expect(gateway.planOf.get(key.id)).toBe('p-standard');
    gateway.failAttach = 'p-free';
    await expect(provisioner.move('acme', 'standard', 'free')).rejects.toThrow('boom');
    expect(gateway.planOf.get(key.id)).toBe('p-standard');
  });

  it("deletes a deleted tenant's key (it counts against the account's 10,000), once, within the call spacing and idempotently", async () => {
    const { gateway, provisioner } = setup();
    const key = await provisioner.provision('acme', 'free');
    await provisioner.provision('globex', 'free');
    gateway.throttle.set('deleteKey', 1);
    await provisioner.release('acme');
    expect([...gateway.keys.keys()]).toEqual(['stack-tenant-globex']);
    expect(gateway.planOf.has(key.id)).toBe(false);
    const deletes = gateway.calls.filter((c) => c.op === 'deleteKey');
    expect(deletes).toHaveLength(2); // one throttled, one retried after a back-off
    expect(deletes[1]!.at - deletes[0]!.at).toBeGreaterThanOrEqual(200);
    await provisioner.release('acme'); // nothing left: no delete
    expect(gateway.calls.filter((c) => c.op === 'deleteKey')).toHaveLength(2);
  });

  it("leaves another deployment's key of the same name alone: provisions its own and releases only its own", async () => {
    const { gateway, provisioner } = setup();
    gateway.foreign.push({ id: 'foreign-1', name: 'stack-tenant-acme', value: 'aValueOfAnotherStack00000000' });
    const key = await provisioner.provision('acme', 'free');
    expect(key.id).not.toBe('foreign-1');
    await provisioner.release('acme');
    expect(gateway.calls.filter((c) => c.op === 'deleteKey')).toHaveLength(1);
    expect(gateway.keys.has('stack-tenant-acme')).toBe(false);
    expect(gateway.foreign).toHaveLength(1);
  });

  it('refuses a plan that is not configured, the platform plan included', async () => {
    const { provisioner } = setup();
    await expect(provisioner.provision('acme', 'gold')).rejects.toBeInstanceOf(UnknownPlanError);
    await expect(provisioner.provision('acme', 'platform')).rejects.toBeInstanceOf(UnknownPlanError);
  });

  it('answers 503 within its budget when an API Gateway call hangs, and a retry finishes the job', async () => {
    const { gateway, provisioner } = setup(1000); // the clock's ms, and real ones for a call that hangs
    gateway.hang.add('createKey');
    const err = await orHang(provisioner.provision('acme', 'free')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    gateway.unhang();
    const key = await provisioner.provision('acme', 'free');
    expect(gateway.planOf.get(key.id)).toBe('p-free');
    expect(gateway.keys.size).toBe(1);
  });

  it('takes the key a concurrent or earlier attempt created (CreateApiKey conflict) instead of failing', async () => {
    const { gateway, provisioner } = setup();
    const first = await provisioner.provision('acme', 'free');
    gateway.hideFromFind = 1; // the retry's first look misses it
    const again = await provisioner.provision('acme', 'free');
    expect(again.id).toBe(first.id);
    expect(gateway.keys.size).toBe(1);
  });

  it('moves a key that sits on another plan than the record says (a half-done move), instead of leaving it there', async () => {
    const { gateway, provisioner } = setup();
    const key = await provisioner.provision('acme', 'free');
    // The record lost the move to free (or predates plans): it names no plan, or the wrong one.
    await provisioner.move('acme', undefined, 'standard');
    expect(gateway.planOf.get(key.id)).toBe('p-standard');
    await provisioner.move('acme', 'standard', 'standard'); // a repair: idempotent
    expect(gateway.planOf.get(key.id)).toBe('p-standard');
  });

  it('puts the key back on its old plan when API Gateway throttles the move past its budget (the put-back is spaced and retried too)', async () => {
    const { gateway, provisioner } = setup();
    const key = await provisioner.provision('acme', 'free');
    gateway.throttle.set('attachKey', 6); // more than the move's budget absorbs
    await expect(provisioner.move('acme', 'free', 'standard')).rejects.toBeInstanceOf(UpstreamUnavailableError);
    expect(gateway.planOf.get(key.id)).toBe('p-free');
  });
});

describe("requestsByDay (the gateway's count)", () => {
  it("reads the tenant's key on its plan over the range, and says when the tenant has no key", async () => {
    const { gateway, provisioner } = setup();
    expect(await provisioner.requestsByDay('acme', 'free', ['2026-11-29', '2026-11-30'])).toBeUndefined();
    const key = await provisioner.provision('acme', 'free');
    gateway.served.set(key.id, new Map([['2026-11-28', 5], ['2026-11-29', 7], ['2026-11-30', 2]]));
    expect(await provisioner.requestsByDay('acme', 'free', ['2026-11-29', '2026-11-30'])).toEqual(new Map([['2026-11-29', 7], ['2026-11-30', 2]]));
  });
});

describe('backfillUsageKeys (at deployment)', () => {
  /** Tenants as the tenants table holds them; the first two as the version before usage plans wrote them (no plan). */
  function tenantsOf(list: { tenantId: string; plan?: string }[]) {
    const rows = new Map(list.map((t) => [t.tenantId, { tenantId: t.tenantId, name: t.tenantId, status: 'active' as const, createdAt: 'x', updatedAt: 'x', ...(t.plan ? { plan: t.plan } : {}) }]));
    return {
      rows,
      async listTenants(limit: number, cursor: string | undefined) {
        const all = [...rows.values()];
        const start = cursor ? Number(cursor) : 0;
        const next = start + Math.min(limit, 2); // small pages, to walk several
        return { items: all.slice(start, next), cursor: next < all.length ? String(next) : undefined };
      },
      async updateTenant(tenantId: string, patch: { plan?: string }) {
        const t = rows.get(tenantId);
        if (!t) return undefined;
        Object.assign(t, patch);
        return t;
      },
    };
  }

  it('gives tenants from before usage plans a key on the default plan and records it, passes over the others without a call, skips deleted ones; a second run changes nothing', async () => {
    const { clock, gateway, provisioner } = setup();
    const tenants = tenantsOf([{ tenantId: 'legacy-1' }, { tenantId: 'legacy-2' }, { tenantId: 'on-standard', plan: 'standard' }, { tenantId: 'gone' }, { tenantId: 'odd-plan', plan: 'gold' }]);
    const deps = { tenants, provisioner, defaultPlan: 'free', isDeleted: async (id: string) => id === 'gone', clock, log: silentLog, budgetMs: 600_000 };
    const report = await backfillUsageKeys(deps);
    expect(report).toMatchObject({ examined: 5, provisioned: 3, failed: [], complete: true });
    const planOf = (id: string) => gateway.planOf.get(gateway.keys.get(`stack-tenant-${id}`)!.id);
    expect(planOf('legacy-1')).toBe('p-free');
    expect(planOf('legacy-2')).toBe('p-free');
    expect(gateway.keys.has('stack-tenant-on-standard')).toBe(false); // a configured plan on record: its key was made with it
    expect(planOf('odd-plan')).toBe('p-free'); // a plan no longer configured: the default
    expect(tenants.rows.get('odd-plan')!.plan).toBe('free');
    expect(gateway.keys.has('stack-tenant-gone')).toBe(false);
    expect(tenants.rows.get('legacy-1')!.plan).toBe('free');
    expect(tenants.rows.get('gone')!.plan).toBeUndefined();

    const calls = gateway.calls.length;
    expect(await backfillUsageKeys(deps)).toMatchObject({ examined: 5, provisioned: 0, complete: true });
    expect(gateway.calls.length).toBe(calls); // every tenant has a plan on record now: not one call
  });

  it('reports a tenant it could not provision and goes on; stops starting tenants at its budget', async () => {
    const { clock, gateway, provisioner } = setup(1000);
    const tenants = tenantsOf([{ tenantId: 'a' }, { tenantId: 'b' }, { tenantId: 'c' }]);
    gateway.throttle.set('createKey', 50); // API Gateway refuses key creations for longer than a tenant's budget
    const first = await backfillUsageKeys({ tenants, provisioner, defaultPlan: 'free', isDeleted: async () => false, clock, log: silentLog, budgetMs: 1500 });
    expect(first.complete).toBe(false);
    expect(first.failed.map((f) => f.tenantId)).toContain('a');
    expect(first.examined).toBeLessThan(3);
    gateway.throttle.clear();
    const second = await backfillUsageKeys({ tenants, provisioner, defaultPlan: 'free', isDeleted: async () => false, clock, log: silentLog, budgetMs: 600_000 });
    expect(second).toMatchObject({ examined: 3, provisioned: 3, failed: [], complete: true });
  });
  it('a state read that fails for one tenant is reported like a failed provisioning, never thrown (a failed trigger rolls the deployment back)', async () => {
    const { gateway, clock, provisioner } = setup();
    const tenants = tenantsOf([{ tenantId: 'a' }, { tenantId: 'flaky' }, { tenantId: 'c' }]);
    const isDeleted = async (id: string) => {
      if (id === 'flaky') throw new Error('ProvisionedThroughputExceededException');
      return false;
    };
    const report = await backfillUsageKeys({ tenants, provisioner, defaultPlan: 'free', isDeleted, clock, log: silentLog, budgetMs: 600_000 });
    expect(report).toMatchObject({ examined: 3, provisioned: 2, complete: true });
    expect(report.failed.map((f) => f.tenantId)).toEqual(['flaky']);
    expect(gateway.keys.has('stack-tenant-flaky')).toBe(false); // not known not to be deleted: no key
  });
});
