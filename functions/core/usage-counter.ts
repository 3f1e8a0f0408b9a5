/**
 * Per-tenant, per-key (or client) and per-day request counts, kept by the authorizer without a
 * write per request: each allowed decision adds one to a counter in this container's memory, and
 * the counters are flushed with one atomic `ADD` per tenant and day (all its keys in that one
 * item) when `flushEveryMs` has passed since the last flush or `flushEveryRequests` decisions
 * have been counted, whichever comes first. The flush runs in the background: no decision waits
 * for it.
 *
 * Counts are approximate within the flush interval: what a container counted since its last
 * flush is lost if the container is retired before the next one (Lambda freezes an idle
 * container and may end it). A write DynamoDB refused (throttling, an error answer) is added
 * back and goes with the next flush; after a timeout nobody knows whether the `ADD` applied, so
 * that batch is dropped: counts err low, never twice.
 */
import type { Clock } from './clock.js';
import type { Log } from './log.js';

/** One tenant's counts of one UTC day. `subjects`: key id, or client id for callers without a key. */
export interface UsageBatch {
  tenantId: string;
  day: string;
  total: number;
  subjects: Map<string, number>;
  /** Epoch ms of the last request counted in this batch. */
  lastAt: number;
}

/** Where counts go (adapter: `DynamoDbUsageSink`). Throwing `UsageNotAppliedError` means nothing was written. */
export interface UsageSink {
  add(batch: UsageBatch): Promise<void>;
}

/** The write was refused before anything was applied (throttled, validation): the counts may be retried. */
export class UsageNotAppliedError extends Error {
  readonly code = 'ERR_USAGE_NOT_APPLIED';
}

/** The tenant recorded for callers without one (platform operators and services). */
export const PLATFORM_TENANT = '_platform';

/** When counts are flushed unless configured (`USAGE_FLUSH_S`, `USAGE_FLUSH_REQUESTS`): the one copy of these defaults. */
export const USAGE_FLUSH_DEFAULTS = { seconds: 60, requests: 1000 } as const;

export interface UsageCounterOptions {
  sink: UsageSink;
  clock: Clock;
  log: Log;
  /** @default USAGE_FLUSH_DEFAULTS.seconds × 1000 */
  flushEveryMs?: number;
  /** @default USAGE_FLUSH_DEFAULTS.requests */
  flushEveryRequests?: number;
}

const DAY_MS = 86_400_000;

export class UsageCounter {
  readonly #o: UsageCounterOptions;
  readonly #everyMs: number;
  readonly #everyRequests: number;
  /** `tenant \0 subject` → count, for the current day. */
  #counts = new Map<string, number>();
  #pending = 0;
  #lastAt = 0;
  #dayStart = 0;
  #day = '';
  #lastFlushAt: number;
  #flushing: Promise<void> | undefined;
  /** Writes sent to the sink (for the bench and tests). */
  writes = 0;

  constructor(o: UsageCounterOptions) {
    this.#o = o;
    this.#everyMs = o.flushEveryMs ?? USAGE_FLUSH_DEFAULTS.seconds * 1000;
    this.#everyRequests = o.flushEveryRequests ?? USAGE_FLUSH_DEFAULTS.requests;
    this.#lastFlushAt = o.clock.now();
  }

  /** Counts one allowed request. A map update; at most one background flush per interval. */
  record(tenantId: string | undefined, subject: string | undefined): void {
    const now = this.#o.clock.now();
    if (now >= this.#dayStart + DAY_MS || now < this.#dayStart) this.#rollDay(now);
    const k = `${tenantId || PLATFORM_TENANT}\u0000${subject || '-'}`;
    this.#counts.set(k, (this.#counts.get(k) ?? 0) + 1);
    this.#lastAt = now;
    if (++this.#pending >= this.#everyRequests || now - this.#lastFlushAt >= this.#everyMs) void this.flush();
  }

  /** A new UTC day: what was counted belongs to the previous one and is flushed under its date. */
  #rollDay(now: number): void {
    if (this.#pending > 0) void this.flush();
    this.#dayStart = now - (now % DAY_MS);
    this.#day = new Date(this.#dayStart).toISOString().slice(0, 10);
  }

  /** Writes what was counted; a flush already running is joined, not repeated. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#pending === 0) return Promise.resolve();
    const counts = this.#counts;
    const day = this.#day;
    const lastAt = this.#lastAt;
    this.#counts = new Map();
    this.#pending = 0;
    this.#lastFlushAt = this.#o.clock.now();
    const batches = new Map<string, UsageBatch>();
    for (const [k, n] of counts) {
      const sep = k.indexOf('\u0000');
      const tenantId = k.slice(0, sep);
      let b = batches.get(tenantId);
      if (!b) batches.set(tenantId, (b = { tenantId, day, total: 0, subjects: new Map(), lastAt }));
      b.total += n;
      b.subjects.set(k.slice(sep + 1), n);
    }
    this.#flushing = Promise.all(
      [...batches.values()].map(async (b) => {
        this.writes++;
        try {
          await this.#o.sink.add(b);
        } catch (err) {
          if (err instanceof UsageNotAppliedError && b.day === this.#day) {
            for (const [s, n] of b.subjects) this.#add(`${b.tenantId}\u0000${s}`, n);
          }
          this.#o.log.warn('usage flush failed', { tenantId: b.tenantId, day: b.day, requests: b.total, retried: err instanceof UsageNotAppliedError, error: String(err) });
        }
      }),
    ).then(() => {
      this.#flushing = undefined;
      // What was counted during this flush and is already due goes now, not with the next request.
      if (this.#pending >= this.#everyRequests || (this.#pending > 0 && this.#o.clock.now() - this.#lastFlushAt >= this.#everyMs)) void this.flush();
    });
    return this.#flushing;
  }

  #add(k: string, n: number): void {
    this.#counts.set(k, (this.#counts.get(k) ?? 0) + n);
    this.#pending += n;
  }
}

/** One day of a tenant's counts, as stored. */
export interface UsageDay {
  day: string;
  total: number;
  /** Key id (or client id) → requests. */
  subjects: Map<string, number>;
}

/** Reads the counters (adapter: `DynamoDbUsageReader`). */
export interface UsageReader {
  /** The stored days among `days` (missing days had no request counted). */
  days(tenantId: string, days: readonly string[]): Promise<UsageDay[]>;
}
