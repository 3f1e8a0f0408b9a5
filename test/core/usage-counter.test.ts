/**
 * The authorizer's usage counts: no write per request, a flush per interval or per count, in the
 * background, one write per tenant and day, the day boundary, and what a failed flush does
 * (refused: retried with the next flush; timed out: dropped, never counted twice).
 */
import { describe, expect, it } from 'vitest';
import { PLATFORM_TENANT, USAGE_FLUSH_CONCURRENCY, USAGE_SUBJECTS_PER_WRITE, UsageCounter, UsageNotAppliedError, type UsageBatch } from '../../functions/core/usage-counter.js';
import type { Log } from '../../functions/core/log.js';
import { ManualClock } from '../support/clock.js';

const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };

function setup(o: { everyMs?: number; everyRequests?: number; fail?: () => Error | undefined } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 23, 59, 0));
  const written: UsageBatch[] = [];
  const counter = new UsageCounter({
    clock,
    log: quiet,
    flushEveryMs: o.everyMs ?? 60_000,
    flushEveryRequests: o.everyRequests ?? 1000,
    sink: {
      async add(b) {
        const err = o.fail?.();
        if (err) throw err;
        written.push(b);
      },
    },
  });
  const totals = () => {
    const out: Record<string, number> = {};
    for (const b of written) for (const [s, n] of b.subjects) out[`${b.tenantId}/${b.day}/${s}`] = (out[`${b.tenantId}/${b.day}/${s}`] ?? 0) + n;
    return out;
  };
  return { clock, counter, written, totals };
}

describe('UsageCounter', () => {
  it('writes nothing per request, then one ADD per tenant and day when the count is reached', async () => {
    const { counter, written, totals } = setup({ everyRequests: 10 });
    for (let i = 0; i < 9; i++) counter.record(i % 2 ? 'acme' : 'globex', i % 3 ? 'key_a' : 'key_b');
    expect(written).toHaveLength(0);
    counter.record(undefined, 'ops-client');
    await counter.flush();
    expect(written.map((b) => b.tenantId).sort()).toEqual(['_platform', 'acme', 'globex']);
    expect(totals()).toEqual({
      'acme/2026-11-30/key_a': 3,
      'acme/2026-11-30/key_b': 1,
      'globex/2026-11-30/key_a': 3,
      'globex/2026-11-30/key_b': 2,
      [`${PLATFORM_TENANT}/2026-11-30/ops-client`]: 1,
    });
    expect(written.find((b) => b.tenantId === 'acme')!.total).toBe(4);
  });

  it('flushes after the interval on the next request, and at most one flush runs at a time', async () => {
    const { clock, counter, written } = setup({ everyMs: 30_000 });
    counter.record('acme', 'k');
    clock.advance(29_000);
    counter.record('acme', 'k');
    expect(counter.writes).toBe(0);
    clock.advance(1_000);
    counter.record('acme', 'k');
    counter.record('acme', 'k'); // while the flush is in flight: counted for the next one
    await counter.flush();
    expect(written).toHaveLength(1);
    expect(written[0]!.total).toBe(3);
    await counter.flush();
    expect(written.reduce((n, b) => n + b.total, 0)).toBe(4);
  });

  it('counts a request after midnight UTC on the new day, and flushes the old day under its date', async () => {
    const { clock, counter, totals } = setup();
    counter.record('acme', 'k');
    clock.advance(60_000); // 00:00 on 1 December
    counter.record('acme', 'k');
    await counter.flush();
    await counter.flush();
    expect(totals()).toEqual({ 'acme/2026-11-30/k': 1, 'acme/2026-12-01/k': 1 });
  });

  it('adds a refused flush back for the next one, and drops one that timed out (never counted twice)', async () => {
    let failure: Error | undefined = new UsageNotAppliedError('throttled');
    const { counter, totals } = setup({ fail: () => failure });
    counter.record('acme', 'k');
    counter.record('acme', 'k');
    await counter.flush();
    failure = undefined;
    counter.record('acme', 'k');
    await counter.flush();
    expect(totals()).toEqual({ 'acme/2026-11-30/k': 3 });
    failure = new Error('timeout');
    counter.record('acme', 'k');
    await counter.flush();
    failure = undefined;
    await counter.flush();
    expect(totals()).toEqual({ 'acme/2026-11-30/k': 3 });
  });

  it('makes 10 writes for 10,000 requests of one tenant at the default count (1,000)', async () => {
    const { counter } = setup();
    for (let i = 0; i < 10_000; i++) {
      counter.record('acme', `key_${i % 5}`);
      if (i % 1000 === 999) await counter.flush();
    }
    expect(counter.writes).toBe(10);
  });
});

describe('UsageCounter under a slow store', () => {
  /** A sink whose writes wait until the test releases them. */
  function slowSink() {
    const written: UsageBatch[] = [];
    const waiting: (() => void)[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    return {
      written,
      release: () => waiting.splice(0).forEach((go) => go()),
      get maxInFlight() {
        return maxInFlight;
      },
      get waiting() {
        return waiting.length;
      },
      async add(b: UsageBatch) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise<void>((go) => waiting.push(go));
        inFlight--;
        written.push(b);
      },
    };
  }

  it('books what was counted before midnight under that day even when a flush is still running at midnight', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 23, 59, 0));
    const sink = slowSink();
    const counter = new UsageCounter({ clock, log: quiet, sink, flushEveryMs: 60_000, flushEveryRequests: 1 });
    counter.record('acme', 'k'); // 23:59:00, flushed at once: the write hangs
    clock.advance(30_000);
    counter.record('acme', 'k'); // 23:59:30, waits for the running flush
    clock.advance(60_000);
    counter.record('acme', 'k'); // 00:00:30 on 1 December
    for (let i = 0; i < 5 && (sink.waiting > 0 || counter.writes < 3); i++) {
      sink.release();
      await new Promise((r) => setImmediate(r));
    }
    await counter.flush();
    sink.release();
    await counter.flush();
    const byDay: Record<string, number> = {};
    for (const b of sink.written) byDay[b.day] = (byDay[b.day] ?? 0) + b.total;
    expect(byDay).toEqual({ '2026-11-30': 2, '2026-12-01': 1 });
  });

  it('keeps a bounded number of writes in flight, however many tenants one flush holds', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 12, 0, 0));
    const sink = slowSink();
    const counter = new UsageCounter({ clock, log: quiet, sink, flushEveryMs: 60_000, flushEveryRequests: 10_000 });
    for (let t = 0; t < 500; t++) counter.record(`tenant-${t}`, 'k');
    const done = counter.flush();
    for (let i = 0; i < 1000 && sink.written.length < 500; i++) {
      sink.release();
      await new Promise((r) => setImmediate(r));
    }
    await done;
    expect(sink.written).toHaveLength(500);
    expect(sink.maxInFlight).toBeLessThanOrEqual(16);
    // The bound is the one the README states, and a flush of 500 tenants reaches it.
    expect(sink.maxInFlight).toBe(USAGE_FLUSH_CONCURRENCY);
  });

  it('splits a tenant with many keys over several writes, each within DynamoDB expression limits, the totals adding up', async () => {
    const { counter, written, totals } = setup({ everyRequests: 100_000 });
    for (let k = 0; k < 1000; k++) counter.record('acme', `key_${String(k).padStart(24, '0')}`);
    counter.record('acme', 'key_0'.padEnd(28, '0'));
    await counter.flush();
    expect(written.length).toBeGreaterThan(1);
    for (const b of written) {
      expect(b.subjects.size).toBeLessThanOrEqual(USAGE_SUBJECTS_PER_WRITE);
      expect(b.total).toBe([...b.subjects.values()].reduce((n, x) => n + x, 0));
    }
    expect(written.reduce((n, b) => n + b.total, 0)).toBe(1001);
    expect(Object.keys(totals())).toHaveLength(1000);
  });
});
