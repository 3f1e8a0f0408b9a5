/**
 * Security events seen by the authorizer (a revoked or rotated key still used, a refused user, a
 * rejected secret), counted in memory and written to the audit trail in the background: one
 * event per kind, credential and window, and at most `maxKeys` credentials per window (the rest
 * are counted in one overflow event), so a flood writes a bounded number of events. Recording is
 * synchronous and never waits for the write; a decision never depends on it.
 */
import type { AuditAction, AuditInput } from './audit.js';
import type { Clock } from './clock.js';
import type { Log } from './log.js';

export type SecurityKind = 'key-revoked-used' | 'key-rotated-used' | 'user-refused' | 'secret-rejected';

/** Whose credential it was, as far as the authorizer knows. */
export interface SecurityWho {
  tenantId?: string | undefined;
  clientId?: string | undefined;
  keyId?: string | undefined;
  userId?: string | undefined;
}

/** The credential errors that are security events, by code. */
export const SECURITY_CODES: Readonly<Record<string, SecurityKind>> = {
  ERR_API_KEY_REVOKED: 'key-revoked-used',
  ERR_API_KEY_ROTATED: 'key-rotated-used',
  ERR_USER_BLOCKED: 'user-refused',
  ERR_USER_DELETED: 'user-refused',
  ERR_TOKEN_SUPERSEDED: 'user-refused',
  ERR_API_KEY_REJECTED: 'secret-rejected',
};

export interface SecurityEventAggregatorOptions {
  clock: Clock;
  log: Log;
  /** Writes aggregated events (loaded lazily by the caller: the SDK stays off the cold start). */
  write: (events: AuditInput[]) => Promise<void>;
  /** @default 60_000 */
  windowMs?: number;
  /** Distinct credentials kept per window. @default 500 */
  maxKeys?: number;
}

interface Bucket {
  kind: SecurityKind;
  who: SecurityWho;
  reasons: Set<string>;
  count: number;
  firstAt: number;
  lastAt: number;
}

const OVERFLOW = '\u0000overflow';

export class SecurityEventAggregator {
  readonly #o: Required<Omit<SecurityEventAggregatorOptions, 'write' | 'log' | 'clock'>> & SecurityEventAggregatorOptions;
  #buckets = new Map<string, Bucket>();
  #windowStart: number | undefined;
  #flushing: Promise<void> | undefined;

  constructor(opts: SecurityEventAggregatorOptions) {
    this.#o = { windowMs: 60_000, maxKeys: 500, ...opts };
  }

  /** Counts one refusal; starts a background write when a window has closed. */
  record(code: string, who: SecurityWho): void {
    const kind = SECURITY_CODES[code];
    if (!kind) return;
    const now = this.#o.clock.now();
    if (this.#windowStart !== undefined && now - this.#windowStart >= this.#o.windowMs) void this.flush();
    this.#windowStart ??= now;
    let key = `${kind}|${who.tenantId ?? ''}|${who.keyId ?? who.clientId ?? who.userId ?? ''}`;
    const overflow = `${OVERFLOW}|${kind}`;
    if (!this.#buckets.has(key) && this.#buckets.size >= this.#o.maxKeys) key = overflow;
    const b = this.#buckets.get(key) ?? { kind, who: key === overflow ? {} : who, reasons: new Set<string>(), count: 0, firstAt: now, lastAt: now };
    b.count++;
    b.lastAt = now;
    b.reasons.add(code);
    this.#buckets.set(key, b);
  }

  /** Writes what has been counted (all of it); one write at a time, failures logged and dropped. */
  flush(): Promise<void> {
    // One write at a time; what was counted meanwhile goes in the next.
    if (this.#flushing) return this.#flushing.then(() => this.flush());
    const buckets = [...this.#buckets.entries()];
    this.#buckets = new Map();
    this.#windowStart = undefined;
    if (buckets.length === 0) return Promise.resolve();
    const events = buckets.map(([key, b]) => toEvent(b, key.startsWith(OVERFLOW), this.#o.windowMs));
    this.#flushing = this.#o
      .write(events)
      .catch((err: unknown) => this.#o.log.warn('could not write security events', { error: String(err), events: events.length }))
      .finally(() => {
        this.#flushing = undefined;
      });
    return this.#flushing;
  }
}

function toEvent(b: Bucket, overflow: boolean, windowMs: number): AuditInput {
  const id = b.who.keyId ?? b.who.clientId ?? b.who.userId ?? '';
  const targetType = b.who.keyId ? 'key' : b.who.userId ? 'user' : 'client';
  return {
    tenantId: b.who.tenantId,
    action: `security.${b.kind}` as AuditAction,
    target: { type: targetType, id: overflow ? '(many)' : id },
    actor: { principalId: b.who.userId ?? b.who.clientId ?? '', authMethod: b.who.userId ? 'jwt' : 'api_key', clientId: b.who.clientId, keyId: b.who.keyId, userId: b.who.userId, tenantId: b.who.tenantId },
    request: { requestId: '' },
    outcome: 'refused',
    status: 401,
    details: {
      count: b.count,
      firstAt: new Date(b.firstAt).toISOString(),
      lastAt: new Date(b.lastAt).toISOString(),
      windowS: Math.round(windowMs / 1000),
      reasons: [...b.reasons].sort(),
      ...(overflow ? { overflow: true } : {}),
    },
  };
}
