import { describe, expect, it } from 'vitest';
import { withDeadline } from '../../functions/core/deadline.js';

const expired = () => new Error('expired');

describe('withDeadline', () => {
  it('settles as the work does when it is in time', async () => {
    await expect(withDeadline(Promise.resolve(42), 60_000, expired)).resolves.toBe(42);
    await expect(withDeadline(Promise.reject(new Error('own failure')), 60_000, expired)).rejects.toThrow('own failure');
  });

  it('rejects with its own error when the work never settles (a short limit is safe: nothing can beat it)', async () => {
    await expect(withDeadline(new Promise<never>(() => undefined), 50, expired)).rejects.toThrow('expired');
  });

  it('swallows a rejection that comes after the deadline', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      let fail!: (e: Error) => void;
      const late = new Promise<never>((_r, reject) => (fail = reject));
      await expect(withDeadline(late, 20, expired)).rejects.toThrow('expired');
      fail(new Error('too late'));
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
