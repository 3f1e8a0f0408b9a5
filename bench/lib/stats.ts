/**
 * Timing helpers: per-iteration samples with process.hrtime.bigint, cases interleaved in
 * rotating blocks so that drift on a noisy machine hits every case of a group alike.
 */

export interface Summary {
  n: number;
  medianUs: number;
  p99Us: number;
  meanUs: number;
  minUs: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarize(samplesUs: readonly number[]): Summary {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  const sum = sorted.reduce((s, x) => s + x, 0);
  return {
    n: sorted.length,
    medianUs: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    meanUs: sorted.length ? sum / sorted.length : Number.NaN,
    minUs: sorted[0] ?? Number.NaN,
  };
}

export interface BenchCase {
  name: string;
  /** Synchronous work is timed without an `await`, so the floor carries no microtask cost. */
  sync?: boolean;
  /** Untimed work before each iteration (e.g. a fresh simulated container). */
  prepare?: () => void | Promise<void>;
  /** The timed work. Throw on a wrong answer: a benchmark of a failing path is worthless. */
  run: () => unknown;
}

export interface InterleaveOptions {
  warmup: number;
  rounds: number;
  perRound: number;
}

/**
 * Warms every case, then runs `rounds` rounds; in each, every case runs `perRound` timed
 * iterations, the order of cases rotating from round to round. Samples are in µs.
 */
export async function interleaved(cases: readonly BenchCase[], opts: InterleaveOptions): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (const c of cases) {
    for (let i = 0; i < opts.warmup; i++) {
      await c.prepare?.();
      if (c.sync) c.run();
      else await c.run();
    }
  }
  for (let r = 0; r < opts.rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const c = cases[(k + r) % cases.length]!;
      const out = samples.get(c.name)!;
      for (let i = 0; i < opts.perRound; i++) {
        if (c.prepare) await c.prepare();
        if (c.sync) {
          const t0 = process.hrtime.bigint();
          c.run();
          out.push(Number(process.hrtime.bigint() - t0) / 1000);
        } else {
          const t0 = process.hrtime.bigint();
          await c.run();
          out.push(Number(process.hrtime.bigint() - t0) / 1000);
        }
      }
    }
  }
  return samples;
}

export const median = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

/** Deterministic PRNG (mulberry32), so a replayed workload is the same in every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
