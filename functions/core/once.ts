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
