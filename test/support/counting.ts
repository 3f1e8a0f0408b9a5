/** Counts calls made through an object (e.g. a shared cache: each call is one DynamoDB request). */
export interface Counter {
  n: number;
}

export function counting<T extends object>(inner: T): { shared: T; calls: Counter } {
  const calls: Counter = { n: 0 };
  const shared = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.n++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { shared, calls };
}
