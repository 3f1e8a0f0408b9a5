/**
 * A value made on first use and shared by every later caller, including callers that arrive
 * while it is still being made; a failure is forgotten, so the next caller tries again.
 */
export function onFirstUse<T>(make: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    if (!pending) {
      pending = make();
      pending.catch(() => (pending = undefined));
    }
    return pending;
  };
}

/**
 * Work shared by the callers that ask for the same id while it runs, for at most `maxAgeMs`
 * (the decision budget): an older run is no longer joined, since it may be stuck on a
 * dependency that has since recovered and every caller joining it would wait for its own
 * timeout. The next caller then starts afresh; the old run's end never removes the new one.
 * A clock that went back counts as too old. Used by the API-key exchange and the state
 * snapshot's point reads.
 */
export class SingleFlight<T> {
  readonly #running = new Map<string, { startedAt: number; promise: Promise<T> }>();

  constructor(
    private readonly clock: { now(): number },
    private readonly maxAgeMs: number,
  ) {}

  /** `work` gets the time it started at (the clock's). */
  run(id: string, work: (startedAt: number) => Promise<T>): Promise<T> {
    const now = this.clock.now();
    const current = this.#running.get(id);
    if (current && now >= current.startedAt && now - current.startedAt < this.maxAgeMs) return current.promise;
    const entry = {
      startedAt: now,
      promise: work(now).finally(() => {
        if (this.#running.get(id) === entry) this.#running.delete(id);
      }),
    };
    this.#running.set(id, entry);
    return entry.promise;
  }

  /** Runs not yet settled (a stuck one replaced by a newer run is no longer counted). */
  get size(): number {
    return this.#running.size;
  }
}
