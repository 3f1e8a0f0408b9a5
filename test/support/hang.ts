import { withDeadline } from '../../functions/core/deadline.js';

/** Generous on purpose: a hang detector for a loaded machine, never a timing. */
export const HANG_DETECTOR_MS = 10_000;

/** Settles as `p` does, or rejects once `HANG_DETECTOR_MS` have passed: the call hung. */
export function orHang<T>(p: Promise<T>): Promise<T> {
  return withDeadline(p, HANG_DETECTOR_MS, () => new Error(`still pending after ${HANG_DETECTOR_MS} ms: a hang`));
}
