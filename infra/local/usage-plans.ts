/**
 * The local API Gateway's usage plans: the API keys and plan associations (from the template,
 * and those the tenants function creates through the control-plane calls below), and their
 * enforcement as API Gateway documents it:
 * - a method with `apiKeyRequired` needs an enabled key (from `X-API-Key`, or from the
 *   authorizer's `usageIdentifierKey` with `apiKeySource: AUTHORIZER`) in a plan of the stage,
 *   else 403 `INVALID_API_KEY` ("Forbidden");
 * - the plan's quota per period (DAY, WEEK from Monday, MONTH; UTC), else 429 `QUOTA_EXCEEDED`;
 * - the plan's throttle as a token bucket per key (`burstLimit` tokens, refilled at
 *   `rateLimit` a second), else 429 `THROTTLED`.
 * Time comes from an injected clock, so tests step through rates and periods without sleeping.
 *
 * Control plane, in the SDK's REST-JSON shapes (`AWS_ENDPOINT_URL_API_GATEWAY` points here):
 * GetApiKeys, CreateApiKey, DeleteApiKey, GetUsagePlans, CreateUsagePlanKey, GetUsagePlanKey,
 * DeleteUsagePlanKey, GetUsage. Lists come a page at a time as API Gateway gives them (`limit`,
 * 25 by default and 500 at most, then `position`), so a caller that reads only the first page
 * fails here as it would there.
 */
import { randomBytes } from 'node:crypto';
import { API_KEY_VALUE_PATTERN } from '../../functions/core/usage-plans.js';
import type { ApiKeyModel, UsagePlanModel } from './cloud-assembly.js';

interface Key {
  id: string;
  name: string;
  value: string;
  enabled: boolean;
  createdDate: number;
}

export type UsageVerdict = { ok: true; keyId: string; planId: string } | { ok: false; type: 'INVALID_API_KEY' | 'THROTTLED' | 'QUOTA_EXCEEDED' };

export interface ControlAnswer {
  status: number;
  body: unknown;
  errorType?: string;
}

const DAY_MS = 86_400_000;

/** Start of the quota period holding `now` (UTC), and of the next one. */
export function quotaPeriod(period: 'DAY' | 'WEEK' | 'MONTH', now: number): { start: number; end: number } {
  const d = new Date(now);
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (period === 'DAY') return { start: day, end: day + DAY_MS };
  if (period === 'WEEK') {
    const start = day - ((d.getUTCDay() + 6) % 7) * DAY_MS;
    return { start, end: start + 7 * DAY_MS };
  }
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  return { start, end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** One page of a list, as API Gateway's GET collections answer: `limit` (default 25, at most 500) items from `position`. */
function page<T>(items: readonly T[], url: URL): { item: T[]; position?: string } {
  const limit = Math.min(500, Math.max(1, Number(url.searchParams.get('limit') ?? 25) || 25));
  const from = Number(url.searchParams.get('position') ?? 0) || 0;
  const next = from + limit;
  return { item: items.slice(from, next), ...(next < items.length ? { position: String(next) } : {}) };
}

export class LocalUsagePlans {
  readonly #plans: Map<string, UsagePlanModel>;
  readonly #keys = new Map<string, Key>();
  readonly #byValue = new Map<string, Key>();
  /** plan id → key ids */
  readonly #members = new Map<string, Set<string>>();
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  /** `plan|key|periodStart` → requests counted against the quota */
  readonly #quota = new Map<string, number>();
  /** `plan|key|yyyy-mm-dd` → requests served (GetUsage) */
  readonly #daily = new Map<string, number>();

  constructor(
    plans: readonly UsagePlanModel[],
    keys: readonly ApiKeyModel[],
    resolveValue: (v: unknown) => string | undefined,
    private readonly now: () => number,
  ) {
    this.#plans = new Map(plans.map((p) => [p.logicalId, p]));
    for (const p of plans) this.#members.set(p.logicalId, new Set());
    for (const k of keys) {
      const value = resolveValue(k.value);
      if (value === undefined) continue;
      // CloudFormation would fail the deployment on a value API Gateway refuses.
      if (!API_KEY_VALUE_PATTERN.test(value)) throw new Error(`API key ${k.logicalId}: API Gateway takes only alphanumeric values of 20 to 128 characters`);
      const key = this.#add(k.name, value, k.enabled, k.logicalId);
      for (const planId of k.planLogicalIds) this.#members.get(planId)?.add(key.id);
    }
  }

  #add(name: string, value: string, enabled: boolean, id = randomBytes(5).toString('hex')): Key {
    const key = { id, name, value, enabled, createdDate: this.now() };
    this.#keys.set(id, key);
    this.#byValue.set(value, key);
    return key;
  }

  /** Admits or refuses one request that needs an API key, and counts it when admitted. */
  admit(value: string | undefined): UsageVerdict {
    const key = value === undefined ? undefined : this.#byValue.get(value);
    if (!key || !key.enabled) return { ok: false, type: 'INVALID_API_KEY' };
    const plan = [...this.#plans.values()].find((p) => this.#members.get(p.logicalId)!.has(key.id));
    if (!plan) return { ok: false, type: 'INVALID_API_KEY' };
    const now = this.now();
    const id = `${plan.logicalId}|${key.id}`;
    let quotaKey: string | undefined;
    if (plan.quota) {
      quotaKey = `${id}|${quotaPeriod(plan.quota.period, now).start}`;
      if ((this.#quota.get(quotaKey) ?? 0) >= plan.quota.limit) return { ok: false, type: 'QUOTA_EXCEEDED' };
    }
    if (plan.throttle) {
      const { rateLimit, burstLimit } = plan.throttle;
      const b = this.#buckets.get(id) ?? { tokens: burstLimit, at: now };
      b.tokens = Math.min(burstLimit, b.tokens + ((now - b.at) / 1000) * rateLimit);
      b.at = now;
      this.#buckets.set(id, b);
      if (b.tokens < 1) return { ok: false, type: 'THROTTLED' };
      b.tokens -= 1;
    }
    if (quotaKey) this.#quota.set(quotaKey, (this.#quota.get(quotaKey) ?? 0) + 1);
    const dayKey = `${id}|${isoDay(now)}`;
    this.#daily.set(dayKey, (this.#daily.get(dayKey) ?? 0) + 1);
    return { ok: true, keyId: key.id, planId: plan.logicalId };
  }

  /** One control-plane call, or undefined when the path is not one. */
  control(method: string, url: URL, body: Buffer): ControlAnswer | undefined {
    const path = url.pathname;
    const json = (): Record<string, unknown> => {
      try {
        return body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        return {};
      }
    };
    const error = (status: number, errorType: string, message: string): ControlAnswer => ({ status, errorType, body: { message } });
    const keyOut = (k: Key, withValue: boolean) => ({ id: k.id, name: k.name, enabled: k.enabled, createdDate: Math.floor(k.createdDate / 1000), ...(withValue ? { value: k.value } : {}) });

    if (path === '/apikeys' && method === 'GET') {
      const name = url.searchParams.get('name') ?? '';
      const withValues = url.searchParams.get('includeValues') === 'true';
      return { status: 200, body: page([...this.#keys.values()].filter((k) => k.name.startsWith(name)).map((k) => keyOut(k, withValues)), url) };
    }
    if (path === '/apikeys' && method === 'POST') {
      const b = json();
      // A generated value is 40 alphanumeric characters, as API Gateway's.
      const value = typeof b.value === 'string' && b.value.length > 0 ? b.value : randomBytes(20).toString('hex');
      if (!API_KEY_VALUE_PATTERN.test(value)) return error(400, 'BadRequestException', 'API Key value must be alphanumeric, between 20 and 128 characters');
      if (this.#byValue.has(value)) return error(409, 'ConflictException', 'API Key already exists');
      return { status: 201, body: keyOut(this.#add(String(b.name ?? ''), value, b.enabled === true), true) };
    }
    const keyPath = /^\/apikeys\/([^/]+)$/.exec(path);
    if (keyPath && method === 'DELETE') {
      const key = this.#keys.get(decodeURIComponent(keyPath[1]!));
      if (!key) return error(404, 'NotFoundException', 'Invalid API Key identifier specified');
      this.#keys.delete(key.id);
      this.#byValue.delete(key.value);
      for (const [planId, members] of this.#members) if (members.delete(key.id)) this.#buckets.delete(`${planId}|${key.id}`);
      return { status: 202, body: {} };
    }
    if (path === '/usageplans' && method === 'GET') {
      return { status: 200, body: page([...this.#plans.values()].map((p) => ({ id: p.logicalId, name: p.name })), url) };
    }
    const planKeys = /^\/usageplans\/([^/]+)\/keys(?:\/([^/]+))?$/.exec(path);
    if (planKeys) {
      const planId = decodeURIComponent(planKeys[1]!);
      const members = this.#members.get(planId);
      if (!members) return error(404, 'NotFoundException', 'Invalid Usage Plan ID specified');
      if (method === 'POST' && planKeys[2] === undefined) {
        const keyId = String(json().keyId ?? '');
        const key = this.#keys.get(keyId);
        if (!key) return error(404, 'NotFoundException', 'Invalid API Key identifier specified');
        if (members.has(keyId)) return error(409, 'ConflictException', 'Usage Plan already contains API Key');
        // All plans here serve the one stage: a key may be in one of them only.
        if ([...this.#members.values()].some((m) => m.has(keyId))) return error(409, 'ConflictException', 'API Key cannot reference multiple Usage Plans with the same API Stage');
        members.add(keyId);
        return { status: 201, body: { id: key.id, type: 'API_KEY', name: key.name, value: key.value } };
      }
      if (method === 'GET' && planKeys[2] !== undefined) {
        const key = this.#keys.get(decodeURIComponent(planKeys[2]));
        if (!key || !members.has(key.id)) return error(404, 'NotFoundException', 'Invalid API Key identifier specified');
        return { status: 200, body: { id: key.id, type: 'API_KEY', name: key.name, value: key.value } };
      }
      if (method === 'DELETE' && planKeys[2] !== undefined) {
        const keyId = decodeURIComponent(planKeys[2]);
        if (!members.delete(keyId)) return error(404, 'NotFoundException', 'Invalid API Key identifier specified');
        this.#buckets.delete(`${planId}|${keyId}`);
        return { status: 202, body: {} };
      }
    }
    const usage = /^\/usageplans\/([^/]+)\/usage$/.exec(path);
    if (usage && method === 'GET') {
      const planId = decodeURIComponent(usage[1]!);
      const plan = this.#plans.get(planId);
      if (!plan) return error(404, 'NotFoundException', 'Invalid Usage Plan ID specified');
      const startDate = url.searchParams.get('startDate') ?? '';
      const endDate = url.searchParams.get('endDate') ?? '';
      const only = url.searchParams.get('keyId');
      const from = Date.parse(`${startDate}T00:00:00Z`);
      const to = Date.parse(`${endDate}T00:00:00Z`);
      if (!(from <= to)) return error(400, 'BadRequestException', 'startDate and endDate are required (yyyy-MM-dd)');
      const items: Record<string, [number, number][]> = {};
      for (const keyId of this.#members.get(planId)!) {
        if (only && keyId !== only) continue;
        const days: [number, number][] = [];
        for (let d = from; d <= to; d += DAY_MS) days.push([this.#daily.get(`${planId}|${keyId}|${isoDay(d)}`) ?? 0, plan.quota ? Math.max(0, plan.quota.limit - (this.#quota.get(`${planId}|${keyId}|${quotaPeriod(plan.quota.period, d).start}`) ?? 0)) : 0]);
        items[keyId] = days;
      }
      return { status: 200, body: { usagePlanId: planId, startDate, endDate, values: items } };
    }
    return undefined;
  }
}
