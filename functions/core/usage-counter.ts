/**
 * Per-tenant, per-key (or client) and per-day request counts, kept by the authorizer without a
 * write per request: each allowed decision adds one to a counter in this container's memory, and
 * the counters are flushed with one atomic `ADD` per tenant and day (all its keys in that one
 * item; `USAGE_SUBJECTS_PER_WRITE` keys a write at most) when `flushEveryMs` has passed since the
 * last flush or `flushEveryRequests` decisions have been counted, whichever comes first. The flush
 * runs in the background, `USAGE_FLUSH_CONCURRENCY` writes at a time: no decision waits for it.
 * Counts are kept per UTC day: a day that ends while a flush runs is flushed under its own date.
 *
 * Counts are approximate within the flush interval: what a container counted since its last
 * flush is lost if the container is retired before the next one (Lambda freezes an idle
 * container and may end it). A write DynamoDB refused (throttling, a validation answer) is added
 * back and goes with the next flush; after a timeout or a 5xx answer nobody knows whether the
 * `ADD` applied, so that batch is dropped: counts err low, never twice.
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

/** The write was refused before anything was applied (a 4xx answer: throttled, validation): the counts may be retried. */
export class UsageNotAppliedError extends Error {
  readonly code = 'ERR_USAGE_NOT_APPLIED';
}

/** The tenant recorded for callers without one (platform operators and services). */
export const PLATFORM_TENANT = '_platform';

/** When counts are flushed unless configured (`USAGE_FLUSH_S`, `USAGE_FLUSH_REQUESTS`): the one copy of these defaults. */
export const USAGE_FLUSH_DEFAULTS = { seconds: 60, requests: 1000 } as const;

/**
 * Most keys (or clients) one write carries. DynamoDB limits an expression to 4 KB: one `ADD` of
 * every key of a tenant with a few hundred active keys would be refused every time, and the
 * tenant never counted. More keys than this go in several writes, each with its own total.
 */
export const USAGE_SUBJECTS_PER_WRITE = 100;

/**
 * Most writes one flush keeps in flight. One write per tenant at once would open a socket per
 * tenant a container served (Lambda allows 1,024 descriptors, which the decisions need too).
 */
export const USAGE_FLUSH_CONCURRENCY = 8;

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

/** The counter of one tenant's subject: `tenant \0 subject`. */
const counterKey = (tenantId: string, subject: string) => `${tenantId}\u0000${subject}`;

function addTo(counts: Map<string, number>, key: string, n: number): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

export class UsageCounter {
  readonly #o: UsageCounterOptions;
  readonly #everyMs: number;
  readonly #everyRequests: number;
  /** `tenant \0 subject` → count, for the current day. */
  #counts = new Map<string, number>();
  /** Counts of earlier days not written yet (a day ended while a flush ran, or their write was refused): day → `tenant \0 subject` → count. */
  #earlier = new Map<string, Map<string, number>>();
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
    addTo(this.#counts, counterKey(tenantId || PLATFORM_TENANT, subject || '-'), 1);
    this.#lastAt = now;
    if (++this.#pending >= this.#everyRequests || now - this.#lastFlushAt >= this.#everyMs) void this.flush();
  }

  /**
   * A new UTC day: what was counted belongs to the previous one. It is set aside under its date
   * (a flush running now has already taken its own counts) and flushed as soon as none runs.
   */
  #rollDay(now: number): void {
    if (this.#counts.size > 0) {
      const into = this.#earlierDay(this.#day);
      for (const [k, n] of this.#counts) addTo(into, k, n);
      this.#counts = new Map();
    }
    this.#dayStart = now - (now % DAY_MS);
    this.#day = new Date(this.#dayStart).toISOString().slice(0, 10);
    if (this.#pending > 0) void (this.#flushing ? this.#flushing.then(() => this.flush()) : this.flush());
  }

  #earlierDay(day: string): Map<string, number> {
    let m = this.#earlier.get(day);
    if (!m) this.#earlier.set(day, (m = new Map()));
    return m;
  }

  /** Writes what was counted; a flush already running is joined, not repeated. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#pending === 0) return Promise.resolve();
    const days: [string, Map<string, number>][] = [...this.#earlier, [this.#day, this.#counts]];
    const lastAt = this.#lastAt;
    this.#counts = new Map();
    this.#earlier = new Map();
    this.#pending = 0;
    this.#lastFlushAt = this.#o.clock.now();
    const batches: UsageBatch[] = [];
    for (const [day, counts] of days) {
      const open = new Map<string, UsageBatch>();
      for (const [k, n] of counts) {
        const sep = k.indexOf('\u0000');
        const tenantId = k.slice(0, sep);
        let b = open.get(tenantId);
        if (!b || b.subjects.size >= USAGE_SUBJECTS_PER_WRITE) {
          open.set(tenantId, (b = { tenantId, day, total: 0, subjects: new Map(), lastAt }));
          batches.push(b);
        }
        b.total += n;
        b.subjects.set(k.slice(sep + 1), n);
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < batches.length) await this.#write(batches[next++]!);
    };
    this.#flushing = Promise.all(Array.from({ length: Math.min(USAGE_FLUSH_CONCURRENCY, batches.length) }, worker)).then(() => {
      this.#flushing = undefined;
      // What was counted during this flush and is already due goes now, not with the next request.
      if (this.#pending >= this.#everyRequests || (this.#pending > 0 && this.#o.clock.now() - this.#lastFlushAt >= this.#everyMs)) void this.flush();
    });
    return this.#flushing;
  }

  async #write(b: UsageBatch): Promise<void> {
    this.writes++;
    try {
      await this.#o.sink.add(b);
    } catch (err) {
      const retried = err instanceof UsageNotAppliedError;
      if (retried) {
        const into = b.day === this.#day ? this.#counts : this.#earlierDay(b.day);
        for (const [s, n] of b.subjects) addTo(into, counterKey(b.tenantId, s), n);
        this.#pending += b.total;
      }
      this.#o.log.warn('usage flush failed', { tenantId: b.tenantId, day: b.day, requests: b.total, retried, error: String(err) });
    }
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
