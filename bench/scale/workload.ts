/**
 * A workload for the scale simulation, and its schedule: every request, cold start and state
 * change with its time, drawn from a seeded generator so that two runs of the same workload
 * (stepped differently) see exactly the same events in the same order.
 */
import { rng } from '../lib/stats.js';

export interface Workload {
  tenants: number;
  keysPerTenant: number;
  usersPerTenant: number;
  /** Lifetime of the tokens the identity provider issues for API keys (client credentials). */
  tokenLifetimeS: number;
  /** Lifetime of users' access tokens (a user signs in again when it ends). */
  userTokenLifetimeS: number;
  requestsPerS: number;
  /** Warm authorizer containers (Lambda execution environments) serving the traffic. */
  containers: number;
  /** Containers replaced by a fresh one (a cold start) per hour. */
  coldStartsPerHour: number;
  /** Share of requests that bring an API key (the rest bring a user's bearer token). */
  apiKeyShare: number;
  /** Principal-state changes written by the management API per hour (user role changes). */
  stateChangesPerHour: number;
  /** Simulated span. */
  durationS: number;
  /** Authorizer memory, for GB-seconds (the stack's default is 256 MB, arm64). */
  memoryMb: number;
  seed: number;
}

export const DEFAULT_WORKLOAD: Workload = {
  tenants: 10,
  keysPerTenant: 2,
  usersPerTenant: 5,
  tokenLifetimeS: 3600,
  userTokenLifetimeS: 3600,
  requestsPerS: 10,
  containers: 4,
  coldStartsPerHour: 4,
  apiKeyShare: 0.5,
  stateChangesPerHour: 6,
  durationS: 86_400,
  memoryMb: 256,
  seed: 19,
};

export type SimEvent =
  | { kind: 'request'; atMs: number; slot: number; credential: 'key' | 'user'; index: number }
  | { kind: 'coldStart'; atMs: number; slot: number }
  | { kind: 'stateChange'; atMs: number; user: number };


/** Every event of the workload, in time order (ms from the start of the simulated span). */
export function* schedule(w: Workload): Generator<SimEvent> {
  const rand = rng(w.seed);
  const keys = w.tenants * w.keysPerTenant;
  const users = w.tenants * w.usersPerTenant;
  const endMs = w.durationS * 1000;
  const gapMs = 1000 / w.requestsPerS;
  const coldGapMs = w.coldStartsPerHour > 0 ? 3_600_000 / w.coldStartsPerHour : Infinity;
  const stateGapMs = w.stateChangesPerHour > 0 && users > 0 ? 3_600_000 / w.stateChangesPerHour : Infinity;
  let nextCold = coldGapMs / 2;
  let coldSlot = 0;
  let nextState = stateGapMs / 3;
  for (let i = 0; ; i++) {
    // Uniform arrivals with jitter inside each gap: the request rate is exact, the times are not regular.
    const atMs = Math.floor((i + rand()) * gapMs);
    if (atMs >= endMs) return;
    while (nextCold <= atMs) {
      yield { kind: 'coldStart', atMs: Math.floor(nextCold), slot: coldSlot++ % w.containers };
      nextCold += coldGapMs;
    }
    while (nextState <= atMs) {
      yield { kind: 'stateChange', atMs: Math.floor(nextState), user: Math.floor(rand() * users) };
      nextState += stateGapMs;
    }
    const slot = Math.floor(rand() * w.containers);
    const byKey = keys > 0 && (users === 0 || rand() < w.apiKeyShare);
    yield { kind: 'request', atMs, slot, credential: byKey ? 'key' : 'user', index: Math.floor(rand() * (byKey ? keys : users)) };
  }
}
