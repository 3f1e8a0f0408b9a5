import { describe, expect, it } from 'vitest';
import { onFirstUse, SingleFlight } from '../../functions/core/once.js';
import { ManualClock } from '../support/clock.js';

/** A promise settled by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('SingleFlight', () => {
  it('shares a run with the callers of the same id while it is younger than the limit, then starts afresh', async () => {
    const clock = new ManualClock();
    const flight = new SingleFlight<string>(clock, 1000);
    const stuck = deferred<string>();
    const starts: number[] = [];
    const first = flight.run('k', (at) => (starts.push(at), stuck.promise));
    clock.advance(999);
    expect(flight.run('k', () => Promise.resolve('other'))).toBe(first);
    expect(flight.run('j', () => Promise.resolve('j'))).not.toBe(first); // another id has its own run
    clock.advance(1);
    const fresh = flight.run('k', (at) => (starts.push(at), Promise.resolve('fresh')));
    expect(fresh).not.toBe(first);
    await expect(fresh).resolves.toBe('fresh');
    expect(starts).toEqual([clock.now() - 1000, clock.now()]);
  });

  it('never lets a replaced run remove the newer one when it ends', async () => {
    const clock = new ManualClock();
    const flight = new SingleFlight<string>(clock, 1000);
    const old = deferred<string>();
    const newer = deferred<string>();
    const a = flight.run('k', () => old.promise);
    clock.advance(1000);
    const b = flight.run('k', () => newer.promise);
    old.resolve('late');
    await a;
    expect(flight.run('k', () => Promise.resolve('third'))).toBe(b); // still joined: the late end removed nothing
    newer.resolve('new');
    await expect(b).resolves.toBe('new');
    expect(flight.size).toBe(0);
  });

  it('forgets a failure at once, and treats a clock that went back as too old to join', async () => {
    const clock = new ManualClock();
    const flight = new SingleFlight<string>(clock, 1000);
    await expect(flight.run('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    await expect(flight.run('k', () => Promise.resolve('up'))).resolves.toBe('up');
    const pending = deferred<string>();
    const a = flight.run('k', () => pending.promise);
    clock.advance(-1);
    expect(flight.run('k', () => Promise.resolve('after the step back'))).not.toBe(a);
    pending.resolve('x');
  });
});

describe('onFirstUse', () => {
  it('makes the value once for every caller and tries again after a failure', async () => {
    let made = 0;
    const get = onFirstUse(async () => {
      made++;
      if (made === 1) throw new Error('first fails');
      return made;
    });
    await expect(get()).rejects.toThrow('first fails');
    const [a, b] = await Promise.all([get(), get()]);
    expect([a, b, made]).toEqual([2, 2, 2]);
  });
});
