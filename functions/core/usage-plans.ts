/**
 * Per-tenant limits through API Gateway usage plans (REST APIs only).
 *
 * The API's key source is the authorizer: every allowed REST decision names, in
 * `usageIdentifierKey`, the value of the API Gateway API key of the caller's tenant (or of the
 * platform key for callers without a tenant), and API Gateway applies the throttle and quota of
 * the usage plan that key is attached to. Callers never see or send these values: with
 * `apiKeySource: AUTHORIZER` a value grants nothing by itself, it only names whose budget a
 * request spends. A tenant's value is derived, `HMAC-SHA256(USAGE_KEY_SECRET, "tenant:" + id)`,
 * so the authorizer needs no lookup and no storage, and two deployments in one account never
 * derive the same value. It is never a Latchkey key or secret.
 *
 * Key creation and plan changes go through `UsageKeyProvisioner`: API Gateway allows about
 * 5 CreateApiKey calls a second per account and throttles its control plane hard, so calls are
 * spaced, throttling is retried with back-off on the injected clock, and when the budget runs
 * out the caller gets `UpstreamUnavailableError` (503 + Retry-After) with nothing half done
 * that a retry would not finish.
 */
import { createHmac } from 'node:crypto';
import { realSleep, systemClock, type Clock } from './clock.js';
import { withDeadline } from './deadline.js';
import { ConfigError, LatchkeyError, UpstreamUnavailableError } from './errors.js';
import type { Log } from './log.js';
import type { TenantStore } from './tenant-store.js';

/** The plan of callers without a tenant (platform operators and services). */
export const PLATFORM_PLAN = 'platform';
/** Plan names: lower-case letters, digits and `-`, as in the CDK configuration. */
export const PLAN_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * The API Gateway API key value of a tenant: `lkt` and 64 hex digits, 67 characters. API
 * Gateway takes only alphanumeric values of 20 to 128 characters (no `_` or `-`, so no base64url).
 */
export function tenantUsageKeyValue(secret: string, tenantId: string): string {
  return `lkt${createHmac('sha256', secret).update(`tenant:${tenantId}`).digest('hex')}`;
}

/** What API Gateway accepts as an API key value. */
export const API_KEY_VALUE_PATTERN = /^[A-Za-z0-9]{20,128}$/;

/**
 * What the authorizer returns as `usageIdentifierKey`: the tenant's derived value, or the
 * platform key for callers without a tenant. Values are memoised per tenant (one HMAC, about a
 * microsecond, per tenant and container), bounded so a flood of tenants cannot grow it without end.
 */
export class UsageKeyDeriver {
  readonly #secret: string;
  readonly #platformKey: string;
  /** A plain map cleared when full, not `LruCache`: every REST decision looks a key up, and a hit here costs one lookup (an LRU hit re-inserts). */
  readonly #memo = new Map<string, string>();
  constructor(secret: string, platformKey: string) {
    this.#secret = secret;
    this.#platformKey = platformKey;
  }
  keyFor(tenantId: string | undefined): string {
    if (!tenantId) return this.#platformKey;
    let v = this.#memo.get(tenantId);
    if (v === undefined) {
      if (this.#memo.size >= 10_000) this.#memo.clear();
      v = tenantUsageKeyValue(this.#secret, tenantId);
      this.#memo.set(tenantId, v);
    }
    return v;
  }
}

/** `free,standard,enterprise`: the plans tenants may be on. */
export function parseUsagePlanNames(raw: string, name = 'USAGE_PLANS'): string[] {
  const plans = [...new Set(raw.split(',').map((s) => s.trim()).filter(Boolean))];
  for (const p of plans) if (!PLAN_NAME_PATTERN.test(p) || p === PLATFORM_PLAN) throw new ConfigError(`${name}: "${p}" is not a tenant plan name`);
  if (plans.length === 0) throw new ConfigError(`${name} names no plan`);
  return plans;
}

/** A key as API Gateway holds it. */
export interface GatewayApiKey {
  id: string;
  name: string;
}

/**
 * The API Gateway control plane, as much as usage keys need. Adapters: the SDK one
 * (`functions/adapters/api-gateway-usage-keys.ts`), which `npm start` points at the local
 * gateway's emulation of these calls.
 */
export interface UsageKeyGateway {
  /** The id of the usage plan with this name, if any. */
  findPlan(name: string): Promise<string | undefined>;
  /**
   * The key with this name and this value, if any. Names are not unique in an account (another
   * stack may name a key the same way); the value, derived from this deployment's secret, is.
   */
  findKey(name: string, value: string): Promise<GatewayApiKey | undefined>;
  /** Creates an enabled key with this value; `UsageKeyExistsError` when a key holds this value already. */
  createKey(name: string, value: string): Promise<GatewayApiKey>;
  /**
   * Attaches a key to a plan; already attached is success. `KeyInOtherPlanError` when the key is
   * in another plan of the stage (API Gateway allows one): never reported as success.
   */
  attachKey(planId: string, keyId: string): Promise<void>;
  /** Detaches a key from a plan; not attached is success. */
  detachKey(planId: string, keyId: string): Promise<void>;
  /** Deletes a key (and with it its plan membership); already gone is success. */
  deleteKey(keyId: string): Promise<void>;
  /** GetUsage: requests the plan served with this key on each day from `startDate` to `endDate` (yyyy-mm-dd, UTC), by day. */
  usage(planId: string, keyId: string, startDate: string, endDate: string): Promise<Map<string, number>>;
}

/** API Gateway refused for its rate limits (`TooManyRequestsException`, 429); `retryAfterS` when it said. */
export class GatewayThrottledError extends LatchkeyError {
  constructor(
    message: string,
    readonly retryAfterS: number | undefined,
    options?: { cause?: unknown },
  ) {
    super('ERR_GATEWAY_THROTTLED', message, options);
  }
}

/** A key with this value exists already (CreateApiKey's ConflictException): a concurrent or earlier attempt made it. */
export class UsageKeyExistsError extends LatchkeyError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_USAGE_KEY_EXISTS', 'API Gateway holds a key with this value already', options);
  }
}

/** The key is in another usage plan of the stage, and a key may be in one plan per stage. */
export class KeyInOtherPlanError extends LatchkeyError {
  constructor(
    readonly planId: string,
    readonly keyId: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_KEY_IN_OTHER_PLAN', `API key ${keyId} is in another usage plan of the stage than ${planId}`, options);
  }
}

export interface UsageKeyProvisionerDeps {
  gateway: UsageKeyGateway;
  clock: Clock;
  sleep: (ms: number) => Promise<void>;
  /** The secret tenant key values are derived from (`USAGE_KEY_SECRET`). */
  secret: string;
  /** The plans tenants may be on. */
  plans: readonly string[];
  /**
   * Prefix of key and plan names, the stack name: plan `free` is the usage plan named
   * `<prefix>-free`, a tenant's key is named `<prefix>-tenant-<id>`. Plans are found by name
   * because the function cannot reference their ids without a dependency cycle (plan → stage →
   * deployment → methods → function).
   */
  namePrefix: string;
  /** Longest time one management request spends waiting for API Gateway, a call that hangs included. @default 4000 */
  budgetMs?: number;
  /** Smallest gap between two control-plane calls of this container (CreateApiKey ~5/s per account). @default 250 */
  minGapMs?: number;
}

/** The provisioner of a deployed function: its usage-plan settings, API Gateway, real time. */
export function deployedProvisioner(settings: { secret: string; plans: readonly string[]; namePrefix: string }, gateway: UsageKeyGateway): UsageKeyProvisioner {
  return new UsageKeyProvisioner({ gateway, clock: systemClock, sleep: realSleep, secret: settings.secret, plans: settings.plans, namePrefix: settings.namePrefix });
}

/** A plan name that is not configured. */
export class UnknownPlanError extends LatchkeyError {
  constructor(readonly plan: string) {
    super('ERR_UNKNOWN_PLAN', `no usage plan named ${plan}`);
  }
}

/**
 * Creates tenants' API Gateway keys and moves them between plans, within API Gateway's limits.
 * Every step is idempotent (a key is found by name before one is created; attaching an attached
 * key succeeds), so a request that ended in 503 is finished by its retry.
 */
export class UsageKeyProvisioner {
  readonly #d: UsageKeyProvisionerDeps;
  readonly #budgetMs: number;
  readonly #minGapMs: number;
  #nextCallAt = 0;
  readonly #planIds = new Map<string, string>();

  constructor(d: UsageKeyProvisionerDeps) {
    this.#d = d;
    this.#budgetMs = d.budgetMs ?? 4000;
    this.#minGapMs = d.minGapMs ?? 250;
  }

  get plans(): readonly string[] {
    return this.#d.plans;
  }

  keyName(tenantId: string): string {
    return `${this.#d.namePrefix}-tenant-${tenantId}`;
  }

  /** The usage plan id of a configured plan, looked up once per container. */
  async #planId(plan: string, deadline: number): Promise<string> {
    if (!this.#d.plans.includes(plan)) throw new UnknownPlanError(plan);
    const known = this.#planIds.get(plan);
    if (known !== undefined) return known;
    const id = await this.#call(() => this.#d.gateway.findPlan(`${this.#d.namePrefix}-${plan}`), deadline);
    if (id === undefined) throw new LatchkeyError('ERR_NO_USAGE_PLAN', `the usage plan ${this.#d.namePrefix}-${plan} does not exist`);
    this.#planIds.set(plan, id);
    return id;
  }

  /** The tenant's key exists and is attached to `plan`. */
  async provision(tenantId: string, plan: string): Promise<GatewayApiKey> {
    const deadline = this.#d.clock.now() + this.#budgetMs;
    const planId = await this.#planId(plan, deadline);
    const key = await this.#ensureKey(tenantId, deadline);
    await this.#attach(planId, key, deadline);
    return key;
  }

  /**
   * Moves the tenant's key from `from` (the plan its record names) to `to`. A key can be in one
   * plan of a stage only, so it is detached first; if attaching to the new plan then fails, it is
   * put back on the old one. A key found on yet another plan (a move whose record was not
   * written, a change made outside Latchkey) is detached from it too. With `from` = `to` this
   * repairs a key that is missing or on no plan.
   */
  async move(tenantId: string, from: string | undefined, to: string): Promise<void> {
    const deadline = this.#d.clock.now() + this.#budgetMs;
    const toId = await this.#planId(to, deadline);
    const fromId = from !== undefined && from !== to && this.#d.plans.includes(from) ? await this.#planId(from, deadline) : undefined;
    const key = await this.#ensureKey(tenantId, deadline);
    try {
      if (fromId !== undefined) await this.#call(() => this.#d.gateway.detachKey(fromId, key.id), deadline);
      await this.#attach(toId, key, deadline);
    } catch (err) {
      // Back on the old plan, or the tenant's every request gets 403 until the move is retried.
      // The failure was often throttling: the put-back is spaced and retried like any call, on
      // a budget of its own (half the move's; the function's timeout leaves room).
      if (fromId !== undefined) await this.#call(() => this.#d.gateway.attachKey(fromId, key.id), this.#d.clock.now() + this.#budgetMs / 2).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A deleted tenant's key is deleted, so that it stops counting against the account's 10,000
   * API keys. Idempotent: a retry after a 503 finds nothing left to do.
   */
  async release(tenantId: string): Promise<void> {
    const deadline = this.#d.clock.now() + this.#budgetMs;
    const key = await this.#findKey(tenantId, deadline);
    if (key) await this.#call(() => this.#d.gateway.deleteKey(key.id), deadline);
  }

  /**
   * What API Gateway counted for the tenant's key on its plan, per day (`days` ascending), or
   * undefined when the tenant has no key. Days before a plan move are counted on the old plan,
   * which this does not read.
   */
  async requestsByDay(tenantId: string, plan: string, days: readonly string[]): Promise<Map<string, number> | undefined> {
    if (days.length === 0) return new Map();
    const deadline = this.#d.clock.now() + this.#budgetMs;
    const planId = await this.#planId(plan, deadline);
    const key = await this.#findKey(tenantId, deadline);
    if (!key) return undefined;
    return this.#call(() => this.#d.gateway.usage(planId, key.id, days[0]!, days.at(-1)!), deadline);
  }

  /** The tenant's key of this deployment: its name, and the value derived from this deployment's secret. */
  #findKey(tenantId: string, deadline: number): Promise<GatewayApiKey | undefined> {
    return this.#call(() => this.#d.gateway.findKey(this.keyName(tenantId), tenantUsageKeyValue(this.#d.secret, tenantId)), deadline);
  }

  async #ensureKey(tenantId: string, deadline: number): Promise<GatewayApiKey> {
    const found = await this.#findKey(tenantId, deadline);
    if (found) return found;
    try {
      return await this.#call(() => this.#d.gateway.createKey(this.keyName(tenantId), tenantUsageKeyValue(this.#d.secret, tenantId)), deadline);
    } catch (err) {
      if (!(err instanceof UsageKeyExistsError)) throw err;
      // A concurrent request (a client's retry while the first attempt still runs), or an
      // attempt whose answer was lost, created it: take that key.
      const made = await this.#findKey(tenantId, deadline);
      if (made) return made;
      throw this.#unavailable(1000, err);
    }
  }

  /** Attaches the key to the plan; from any other plan of this deployment it is detached first. */
  async #attach(planId: string, key: GatewayApiKey, deadline: number): Promise<void> {
    try {
      await this.#call(() => this.#d.gateway.attachKey(planId, key.id), deadline);
    } catch (err) {
      if (!(err instanceof KeyInOtherPlanError)) throw err;
      for (const plan of this.#d.plans) {
        const other = await this.#planId(plan, deadline);
        if (other !== planId) await this.#call(() => this.#d.gateway.detachKey(other, key.id), deadline);
      }
      await this.#call(() => this.#d.gateway.attachKey(planId, key.id), deadline);
    }
  }

  /**
   * One control-plane call: spaced by `minGapMs`, throttling retried with back-off until the
   * deadline, and given up at the deadline if it hangs (it may still complete: every step is
   * idempotent, so the client's retry finishes the job).
   */
  async #call<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const now = this.#d.clock.now();
      const start = Math.max(now, this.#nextCallAt);
      if (start > deadline) throw this.#unavailable(start - now);
      this.#nextCallAt = start + this.#minGapMs;
      if (start > now) await this.#d.sleep(start - now);
      try {
        const left = Math.max(1, deadline - this.#d.clock.now());
        return await withDeadline(fn(), left, () => new UpstreamUnavailableError('ERR_GATEWAY_TIMEOUT', `API Gateway did not answer within ${left} ms`, 1));
      } catch (err) {
        if (!(err instanceof GatewayThrottledError)) throw err;
        const waitMs = err.retryAfterS !== undefined ? err.retryAfterS * 1000 : Math.min(2000, 200 * 2 ** attempt);
        const at = this.#d.clock.now() + waitMs;
        if (at > deadline) throw this.#unavailable(waitMs, err);
        this.#nextCallAt = Math.max(this.#nextCallAt, at);
      }
    }
  }

  #unavailable(waitMs: number, cause?: unknown): UpstreamUnavailableError {
    return new UpstreamUnavailableError('ERR_GATEWAY_THROTTLED', 'API Gateway is rate-limiting key changes; retry later', Math.max(1, waitMs / 1000), { cause });
  }
}

export interface UsageKeyBackfillDeps {
  tenants: Pick<TenantStore, 'listTenants' | 'updateTenant'>;
  provisioner: UsageKeyProvisioner;
  defaultPlan: string;
  /** Deleted tenants keep no key (`DELETE /tenants/{id}` released it). */
  isDeleted: (tenantId: string) => Promise<boolean>;
  clock: Clock;
  log: Log;
  /** Stop starting new tenants after this long (the rest is left for the next run). */
  budgetMs: number;
}

export interface UsageKeyBackfillReport {
  examined: number;
  provisioned: number;
  failed: { tenantId: string; error: string }[];
  /** Whether every tenant was examined within the budget. */
  complete: boolean;
}

/**
 * Gives every tenant without a usage plan on record (created before usage plans, or on a plan
 * no longer configured) its API Gateway key on the default plan, and records the plan. Tenants
 * with a configured plan are passed over without a call, so each run goes further than the last:
 * run when the stack is deployed (a CDK trigger, once the plans exist) and hourly after that.
 * Idempotent (the provisioner finds what exists), one tenant at a time within API Gateway's rates;
 * a tenant that fails is reported and left for the next run (or `PATCH /tenants/{id}` `{plan}`).
 */
export async function backfillUsageKeys(d: UsageKeyBackfillDeps): Promise<UsageKeyBackfillReport> {
  const report: UsageKeyBackfillReport = { examined: 0, provisioned: 0, failed: [], complete: false };
  const stopAt = d.clock.now() + d.budgetMs;
  let cursor: string | undefined;
  do {
    const page = await d.tenants.listTenants(100, cursor);
    for (const t of page.items) {
      if (d.clock.now() >= stopAt) {
        d.log.warn('usage-key backfill stopped at its budget; the next run goes on', { examined: report.examined });
        return report;
      }
      report.examined++;
      // A configured plan on record: the tenant has its key (creation and moves provision it before recording).
      if (t.plan !== undefined && d.provisioner.plans.includes(t.plan)) continue;
      const plan = d.defaultPlan;
      try {
        // Inside the try: one tenant's failed state read must not fail the trigger (and roll the deployment back).
        if (await d.isDeleted(t.tenantId)) continue;
        await d.provisioner.provision(t.tenantId, plan);
        await d.tenants.updateTenant(t.tenantId, { plan }, new Date(d.clock.now()).toISOString());
        report.provisioned++;
      } catch (err) {
        d.log.warn('usage key not provisioned', { tenantId: t.tenantId, error: String(err) });
        report.failed.push({ tenantId: t.tenantId, error: String(err) });
      }
    }
    cursor = page.cursor;
  } while (cursor);
  report.complete = true;
  d.log.info('usage-key backfill done', { examined: report.examined, provisioned: report.provisioned, failed: report.failed.length });
  return report;
}
