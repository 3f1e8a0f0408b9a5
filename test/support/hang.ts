import { withDeadline } from '../../functions/core/deadline.js';

/** Generous on purpose: a hang detector for a loaded machine, never a timing. */
export const HANG_DETECTOR_MS = 10_000;

/** Settles as `p` does, or rejects once `HANG_DETECTOR_MS` have passed: the call hung. */
export function orHang<T>(p: Promise<T>): Promise<T> {
  return withDeadline(p, HANG_DETECTOR_MS, () => new Error(`still pending after ${HANG_DETECTOR_MS} ms: a hang`));
}

/**
 * Calls `attempt` until `done` holds for its result, at most `attempts` times, and returns
 * every result. For the first call after a fault recovers on a loaded machine: it may itself
 * run out of its (production) deadline while the connections are re-established.
 */
export async function untilDone<T>(attempt: () => Promise<T>, done: (result: T) => boolean, attempts = 3): Promise<T[]> {
  const results: T[] = [];
  while (results.length < attempts && (results.length === 0 || !done(results.at(-1)!))) results.push(await attempt());
  return results;
}

/** Waits until more than `ms` have passed since `since` (epoch ms): a lower bound, waiting longer changes nothing. */
export async function pastMs(since: number, ms: number): Promise<void> {
  while (Date.now() - since <= ms) await new Promise((r) => setTimeout(r, 50));
}
