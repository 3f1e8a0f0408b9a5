import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../functions/core/audit.js';
import { silentLog } from '../../functions/core/log.js';
import { SecurityEventAggregator } from '../../functions/core/security-events.js';
import { ManualClock } from '../support/clock.js';

function setup(opts: { maxKeys?: number; fail?: boolean } = {}) {
  const clock = new ManualClock();
  const written: AuditInput[][] = [];
  const agg = new SecurityEventAggregator({
    clock,
    log: silentLog,
    maxKeys: opts.maxKeys,
    write: async (events) => {
      if (opts.fail) throw new Error('down');
      written.push(events);
    },
  });
  return { clock, written, agg };
}

describe('SecurityEventAggregator', () => {
  it('turns a flood for one key into one event per window with the count', async () => {
    const { clock, written, agg } = setup();
    for (let i = 0; i < 10_000; i++) agg.record('ERR_API_KEY_REVOKED', { tenantId: 'acme', keyId: 'key_1', clientId: 'c1' });
    expect(written).toEqual([]); // nothing written on the hot path
    clock.advance(60_000);
    agg.record('ERR_API_KEY_REVOKED', { tenantId: 'acme', keyId: 'key_1', clientId: 'c1' }); // closes the window: background write
    await agg.flush();
    const events = written.flat();
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ tenantId: 'acme', action: 'security.key-revoked-used', target: { type: 'key', id: 'key_1' }, details: { count: 10_000 } });
    expect(events[1]).toMatchObject({ details: { count: 1 } });
  });

  it('keeps at most maxKeys credentials per window and counts the rest in one overflow event', async () => {
    const { written, agg } = setup({ maxKeys: 3 });
    for (let i = 0; i < 1000; i++) agg.record('ERR_API_KEY_REJECTED', { clientId: `client-${i}` });
    await agg.flush();
    const events = written.flat();
    expect(events).toHaveLength(4);
    expect(events[3]).toMatchObject({ action: 'security.secret-rejected', target: { id: '(many)' }, details: { count: 997, overflow: true } });
  });

  it('ignores refusals that are not security events, and survives a failed write', async () => {
    const { written, agg } = setup({ fail: true });
    agg.record('ERR_NO_CREDENTIALS', {});
    agg.record('ERR_USER_BLOCKED', { tenantId: 'acme', userId: 'u1' });
    await expect(agg.flush()).resolves.toBeUndefined();
    expect(written).toEqual([]);
  });
});
