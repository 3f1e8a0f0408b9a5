/**
 * The authorizer's usage counts: no write per request, a flush per interval or per count, in the
 * background, one write per tenant and day, the day boundary, and what a failed flush does
 * (refused: retried with the next flush; timed out: dropped, never counted twice).
 */
import { describe, expect, it } from 'vitest';
import { PLATFORM_TENANT, UsageCounter, UsageNotAppliedError, type UsageBatch } from '../../functions/core/usage-counter.js';
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
