/**
 * The audit trail: one event per change made through the management API and per refused
 * attempt, kept per tenant as a hash chain. Adapter: `DynamoDbAuditLog`.
 *
 * The chain rule: event `n` of a partition carries `prevHash` = the `hash` of event `n-1`
 * (`GENESIS_HASH` for the first) and `hash` = SHA-256 of its canonical form (every field but
 * `hash`, keys sorted). Appends are conditional on the chain head, so two writers cannot both
 * extend the same link: one wins, the other re-reads the head and retries. Any edit, removal or
 * reordering of a stored event breaks the recomputation at that event or the next.
 *
 * A change and its event: the event is written ahead (a pending outbox item, not yet in the
 * chain) before the change starts, and sealed into the chain with the outcome after it. If the
 * pending write fails, the change does not start; if the process stops (or the seal fails) after
 * the change, the pending item is sealed later with outcome `unconfirmed` by the next append,
 * read or verification of that partition. Nothing is lost; an event never carries a secret.
 */
import { createHash } from 'node:crypto';
import { LatchkeyError } from './errors.js';
import type { AuthMethod, Principal } from './principal.js';

export const GENESIS_HASH = '0'.repeat(64);
/** How long events are kept (TTL), unless configured: 400 days. */
export const DEFAULT_AUDIT_RETENTION_DAYS = 400;
/** A pending event older than this is taken to belong to a stopped request: sealed as `unconfirmed`. */
export const DEFAULT_PENDING_STALE_MS = 5 * 60_000;

export const AUDIT_ACTIONS = [
  'tenant.create',
  'tenant.update',
  'tenant.disable',
  'tenant.enable',
  'tenant.delete',
  'key.issue',
  'key.rotate',
  'key.revoke',
  'user.create',
  'user.update',
  'user.block',
  'user.unblock',
  'user.roles',
  'user.delete',
  /** A refused read of a management route (refused changes keep their own action). */
  'access',
  /** From the authorizer, aggregated per credential and window (`SecurityEventAggregator`). */
  'security.key-revoked-used',
  'security.key-rotated-used',
  'security.user-refused',
  'security.secret-rejected',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** `success`; `refused` (403); `failed` (any other error answer); `unconfirmed` (the request stopped before it said). */
export type AuditOutcome = 'success' | 'refused' | 'failed' | 'unconfirmed';

export interface AuditActor {
  principalId: string;
  authMethod: AuthMethod;
  clientId?: string | undefined;
  keyId?: string | undefined;
  userId?: string | undefined;
  tenantId?: string | undefined;
}

export interface AuditTarget {
  type: 'tenant' | 'key' | 'user' | 'route' | 'client';
  /** Unknown until the change made it (a created key or user) when the request stopped early. */
  id: string;
}

export interface AuditRequestInfo {
  requestId: string;
  sourceIp?: string | undefined;
  userAgent?: string | undefined;
}

/** What the caller of `AuditLog` says; the log adds the chain fields. */
export interface AuditInput {
  /** The tenant whose trail holds the event; `undefined` for the platform partition. */
  tenantId: string | undefined;
  action: AuditAction;
  target: AuditTarget;
  actor: AuditActor;
  request: AuditRequestInfo;
  outcome: AuditOutcome;
  /** HTTP status answered, when there was one. */
  status?: number | undefined;
  /** Names of the fields changed and non-secret values (roles, status); never a secret or token. */
  details?: Record<string, string | number | boolean | string[]> | undefined;
}

export interface AuditEvent extends AuditInput {
  /** `tenant#<id>` or `platform`. */
  partition: string;
  seq: number;
  /** ISO time; never earlier than the previous event of the partition. */
  at: string;
  eventId: string;
  prevHash: string;
  hash: string;
}

/** An event written ahead of its change, to be sealed with the outcome. */
export interface PendingAudit {
  readonly partition: string;
  readonly eventId: string;
  readonly input: AuditInput;
}

export interface AuditQuery {
  /** A tenant's trail, or every partition (operators' `GET /audit`) when undefined. */
  tenantId?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  action?: string | undefined;
  /** Matches the actor's principal id. */
  actor?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

export interface AuditVerification {
  ok: boolean;
  /** Events checked. */
  checked: number;
  /** Sequence number of the first event kept (older ones expired by retention). */
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  firstBreak?: { seq: number; eventId: string | undefined; reason: 'hash-mismatch' | 'prev-hash-mismatch' | 'sequence-gap' | 'head-mismatch' } | undefined;
}

export interface AuditLog {
  /** Appends a finished event (refusals). */
  append(input: AuditInput): Promise<AuditEvent>;
  /** Writes the event ahead of its change; the change must not start if this throws. */
  begin(input: AuditInput): Promise<PendingAudit>;
  /** Seals a pending event into the chain with what happened; undefined if it was sealed meanwhile (as `unconfirmed`, after a stall). */
  seal(pending: PendingAudit, result: Pick<AuditInput, 'outcome' | 'status' | 'target'> & { details?: AuditInput['details'] }): Promise<AuditEvent | undefined>;
  query(q: AuditQuery): Promise<{ items: AuditEvent[]; cursor: string | undefined }>;
  verify(tenantId: string | undefined): Promise<AuditVerification>;
}

export class AuditCursorError extends LatchkeyError {
  constructor() {
    super('ERR_AUDIT_CURSOR', 'the cursor is not valid');
  }
}

export const auditPartition = (tenantId: string | undefined): string => (tenantId === undefined ? 'platform' : `tenant#${tenantId}`);

export function actorOf(p: Principal): AuditActor {
  return { principalId: p.subject, authMethod: p.authMethod, clientId: p.clientId, keyId: p.keyId, userId: p.userId, tenantId: p.tenantId };
}

/** JSON with sorted keys and no undefined members: the form that is hashed. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The hash an event must carry: over every field but `hash`, `prevHash` included. */
export function eventHash(e: Omit<AuditEvent, 'hash'> & { hash?: string }): string {
  const { hash: _hash, ...rest } = e;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

/**
 * Checks a partition's events one at a time, in sequence order, and keeps only the first break:
 * a trail of any length is verified in constant memory. `finish(headSeq)` compares the last event
 * with the chain head, so events missing at the end show as a head mismatch.
 */
export class ChainVerifier {
  #prev: AuditEvent | undefined;
  #checked = 0;
  #firstSeq: number | undefined;
  #break: AuditVerification['firstBreak'];

  /** False once a break is found (the rest need not be read). */
  push(e: AuditEvent): boolean {
    if (this.#break) return false;
    this.#checked++;
    this.#firstSeq ??= e.seq;
    const prev = this.#prev;
    // The oldest kept event may follow expired ones: its prevHash is then taken on trust.
    if (prev && e.seq !== prev.seq + 1) this.#break = { seq: prev.seq + 1, eventId: undefined, reason: 'sequence-gap' };
    else if (prev ? e.prevHash !== prev.hash : e.seq === 1 && e.prevHash !== GENESIS_HASH) this.#break = { seq: e.seq, eventId: e.eventId, reason: 'prev-hash-mismatch' };
    else if (eventHash(e) !== e.hash) this.#break = { seq: e.seq, eventId: e.eventId, reason: 'hash-mismatch' };
    else this.#prev = e;
    return this.#break === undefined;
  }

  finish(headSeq: number | undefined): AuditVerification {
    const lastSeq = this.#prev?.seq;
    if (this.#break) return broken(this.#checked, this.#firstSeq, lastSeq, this.#break);
    if ((headSeq ?? 0) !== (lastSeq ?? 0)) return broken(this.#checked, this.#firstSeq, lastSeq, { seq: (lastSeq ?? 0) + 1, eventId: undefined, reason: 'head-mismatch' });
    return { ok: true, checked: this.#checked, firstSeq: this.#firstSeq, lastSeq };
  }
}

/** `ChainVerifier` over events already in memory. */
export function verifyChain(events: Iterable<AuditEvent>, headSeq: number | undefined): AuditVerification {
  const v = new ChainVerifier();
  for (const e of events) if (!v.push(e)) break;
  return v.finish(headSeq);
}

function broken(checked: number, firstSeq: number | undefined, lastSeq: number | undefined, firstBreak: NonNullable<AuditVerification['firstBreak']>): AuditVerification {
  return { ok: false, checked, firstSeq, lastSeq, firstBreak };
}
