/**
 * A deadline around work that may hang on a dependency. Real time on purpose: it bounds how
 * long a caller waits, which no injected clock can shorten.
 */

/**
 * Settles as `work` does, or rejects with `onExpiry()` once `ms` have passed. `work` goes on
 * in the background; its late rejection is swallowed (whoever shares it sees it themselves).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, onExpiry: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onExpiry()), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
