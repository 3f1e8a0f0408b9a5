/**
 * The audit trail in its own table (`pk`, `sk`, GSI `gsi1` on `gsi1pk`/`gsi1sk`, TTL `expiresAt`):
 * - `<partition>` / `e#<at>#<seq>`: an event (partition `tenant#<id>` or `platform`); `gsi1pk =
 *   'audit'`, `gsi1sk = <at>#<partition>#<seq>` lists every partition by time for operators;
 * - `<partition>` / `head`: the chain head (`seq`, `hash`, `atMs`), the append's condition;
 * - `<partition>` / `p#<eventId>`: an event written ahead of its change (the outbox), until sealed.
 *
 * Every append is one TransactWriteItems: the event (only if new), the head (only if still at the
 * sequence read), and for a seal the deletion of the pending item (only if still there).
 */
import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Clock } from '../core/clock.js';
import {
  AuditCursorError,
  auditPartition,
  DEFAULT_AUDIT_RETENTION_DAYS,
  DEFAULT_PENDING_STALE_MS,
  eventHash,
  GENESIS_HASH,
  ChainVerifier,
  type AuditEvent,
  type AuditInput,
  type AuditLog,
  type AuditQuery,
  type AuditVerification,
  type PendingAudit,
} from '../core/audit.js';
import { createDocumentClient } from './dynamodb-token-cache.js';

export const AUDIT_INDEX = 'gsi1';
const ALL = 'audit';
const MAX_ATTEMPTS = 20;
/** Full-jitter exponential back-off between appends that lost the head: 5 ms doubling, at most 250 ms. */
const backoffMs = (attempt: number) => Math.floor(Math.random() * Math.min(250, 5 * 2 ** attempt));
const seq12 = (n: number) => String(n).padStart(12, '0');

export interface DynamoDbAuditLogOptions {
  tableName: string;
  clock: Clock;
  retentionDays?: number | undefined;
  pendingStaleMs?: number | undefined;
  client?: DynamoDBDocumentClient | undefined;
}

export class DynamoDbAuditLog implements AuditLog {
  readonly #table: string;
  readonly #db: DynamoDBDocumentClient;
  readonly #clock: Clock;
  readonly #retentionS: number;
  readonly #staleMs: number;

  constructor(opts: DynamoDbAuditLogOptions) {
    this.#table = opts.tableName;
    this.#clock = opts.clock;
    this.#retentionS = (opts.retentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS) * 86_400;
    this.#staleMs = opts.pendingStaleMs ?? DEFAULT_PENDING_STALE_MS;
    this.#db = opts.client ?? createDocumentClient({ maxAttempts: 3, requestHandler: { requestTimeout: 3000, connectionTimeout: 1000 } });
  }

  async append(input: AuditInput): Promise<AuditEvent> {
    const partition = auditPartition(input.tenantId);
    await this.#sealStale(partition);
    return (await this.#link(partition, randomUUID(), input, undefined))!;
  }

  async begin(input: AuditInput): Promise<PendingAudit> {
    const partition = auditPartition(input.tenantId);
    const eventId = randomUUID();
    const now = this.#clock.now();
    await this.#db.send(
      new PutCommand({
        TableName: this.#table,
        Item: { pk: partition, sk: `p#${eventId}`, input, createdAtMs: now, expiresAt: Math.floor(now / 1000) + this.#retentionS },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return { partition, eventId, input };
  }

  async seal(pending: PendingAudit, result: Pick<AuditInput, 'outcome' | 'status' | 'target'> & { details?: AuditInput['details'] }): Promise<AuditEvent | undefined> {
    await this.#sealStale(pending.partition);
    const input: AuditInput = { ...pending.input, ...result, details: result.details ?? pending.input.details };
    return this.#link(pending.partition, pending.eventId, input, `p#${pending.eventId}`);
  }

  async query(q: AuditQuery): Promise<{ items: AuditEvent[]; cursor: string | undefined }> {
    const lo = q.from ?? '0';
    const hi = `${q.to ?? '9999'}~`;
    const filters: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    if (q.action !== undefined) {
      filters.push('#action = :action');
      names['#action'] = 'action';
      values[':action'] = q.action;
    }
    if (q.actor !== undefined) {
      filters.push('#actor.#pid = :actor');
      names['#actor'] = 'actor';
      names['#pid'] = 'principalId';
      values[':actor'] = q.actor;
    }
    const byTenant = q.tenantId !== undefined;
    if (byTenant) await this.#sealStale(auditPartition(q.tenantId));
    const out = await this.#db.send(
      new QueryCommand({
        TableName: this.#table,
        ...(byTenant
          ? { KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi', ExpressionAttributeValues: { ':pk': auditPartition(q.tenantId), ':lo': `e#${lo}`, ':hi': `e#${hi}`, ...values } }
          : { IndexName: AUDIT_INDEX, KeyConditionExpression: 'gsi1pk = :all AND gsi1sk BETWEEN :lo AND :hi', ExpressionAttributeValues: { ':all': ALL, ':lo': lo, ':hi': hi, ...values } }),
        ...(filters.length > 0 ? { FilterExpression: filters.join(' AND '), ExpressionAttributeNames: names } : {}),
        ScanIndexForward: false,
        Limit: q.limit,
        ExclusiveStartKey: decodeCursor(q.cursor, byTenant ? auditPartition(q.tenantId) : undefined),
      }),
    );
    return { items: (out.Items ?? []).map(toEvent), cursor: out.LastEvaluatedKey ? Buffer.from(JSON.stringify(out.LastEvaluatedKey)).toString('base64url') : undefined };
  }

  async verify(tenantId: string | undefined): Promise<AuditVerification> {
    const partition = auditPartition(tenantId);
    await this.#sealStale(partition);
    // The head first: events appended while the walk runs come after it and are not checked.
    const head = await this.#head(partition);
    const v = new ChainVerifier();
    // Key order is sequence order: `at` never goes back within a chain, and the sort key is fixed
    // at the append (editing the `at` attribute later does not move the item).
    let start: Record<string, unknown> | undefined;
    let going = true;
    do {
      const out = await this.#db.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :e)',
          ExpressionAttributeValues: { ':pk': partition, ':e': 'e#' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) {
        const e = toEvent(item);
        if (head && e.seq > head.seq) break;
        if (!(going = v.push(e))) break;
      }
      start = out.LastEvaluatedKey;
    } while (start && going);
    return v.finish(head?.seq);
  }

  async #head(partition: string): Promise<{ seq: number; hash: string; atMs: number } | undefined> {
    const out = await this.#db.send(new GetCommand({ TableName: this.#table, Key: { pk: partition, sk: 'head' }, ConsistentRead: true }));
    const i = out.Item;
    return i ? { seq: Number(i.seq), hash: String(i.hash), atMs: Number(i.atMs) } : undefined;
  }

  /**
   * Adds the event as the next link of the partition's chain; with `pendingSk`, removes that
   * pending item in the same transaction. Undefined when the pending item was already sealed.
   */
  async #link(partition: string, eventId: string, input: AuditInput, pendingSk: string | undefined): Promise<AuditEvent | undefined> {
    for (let attempt = 1; ; attempt++) {
      const head = await this.#head(partition);
      const atMs = Math.max(this.#clock.now(), head?.atMs ?? 0);
      const at = new Date(atMs).toISOString();
      const unsigned = { ...stripUndefined(input), partition, seq: (head?.seq ?? 0) + 1, at, eventId, prevHash: head?.hash ?? GENESIS_HASH };
      const event: AuditEvent = { ...unsigned, hash: eventHash(unsigned) };
      const sk = `e#${at}#${seq12(event.seq)}`;
      try {
        await this.#db.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.#table,
                  Item: { pk: partition, sk, gsi1pk: ALL, gsi1sk: `${at}#${partition}#${seq12(event.seq)}`, expiresAt: Math.floor(atMs / 1000) + this.#retentionS, ...event },
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              {
                Put: {
                  TableName: this.#table,
                  Item: { pk: partition, sk: 'head', seq: event.seq, hash: event.hash, atMs },
                  ...(head
                    ? { ConditionExpression: 'seq = :seq', ExpressionAttributeValues: { ':seq': head.seq } }
                    : { ConditionExpression: 'attribute_not_exists(pk)' }),
                },
              },
              ...(pendingSk ? [{ Delete: { TableName: this.#table, Key: { pk: partition, sk: pendingSk }, ConditionExpression: 'attribute_exists(pk)' } }] : []),
            ],
          }),
        );
        return event;
      } catch (err) {
        const name = (err as { name?: string }).name;
        if (name !== 'TransactionCanceledException' && name !== 'TransactionConflictException') throw err;
        const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
        if (pendingSk && reasons[2]?.Code === 'ConditionalCheckFailed') return undefined;
        // Another append took the head: read it again and link after it.
        if (attempt >= MAX_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, backoffMs(attempt)));
      }
    }
  }

  /** Pending events of stopped requests: sealed as `unconfirmed`, so none is lost. */
  async #sealStale(partition: string): Promise<void> {
    const out = await this.#db.send(
      new QueryCommand({
        TableName: this.#table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':pk': partition, ':p': 'p#' },
        ConsistentRead: true,
      }),
    );
    const now = this.#clock.now();
    for (const item of out.Items ?? []) {
      if (Number(item.createdAtMs) + this.#staleMs > now) continue;
      const eventId = String(item.sk).slice(2);
      const input = item.input as AuditInput;
      await this.#link(partition, eventId, { ...input, outcome: 'unconfirmed', status: undefined }, String(item.sk));
    }
  }
}

const EVENT_FIELDS = ['partition', 'seq', 'at', 'eventId', 'prevHash', 'hash', 'tenantId', 'action', 'target', 'actor', 'request', 'outcome', 'status', 'details'] as const;

function toEvent(item: Record<string, unknown>): AuditEvent {
  return Object.fromEntries(EVENT_FIELDS.filter((f) => item[f] !== undefined).map((f) => [f, item[f]])) as unknown as AuditEvent;
}

/** What DynamoDB will store (undefined members removed), so the hash is over what is read back. */
function stripUndefined<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Only cursors this log handed out for the same partition (or for the whole trail) are accepted. */
function decodeCursor(cursor: string | undefined, partition: string | undefined): Record<string, unknown> | undefined {
  if (cursor === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new AuditCursorError();
  }
  const o = v as Record<string, unknown>;
  const expected = partition !== undefined ? 'pk,sk' : 'gsi1pk,gsi1sk,pk,sk';
  if (typeof v !== 'object' || v === null || Object.keys(o).sort().join(',') !== expected || Object.values(o).some((x) => typeof x !== 'string')) throw new AuditCursorError();
  if (!String(o.sk).startsWith('e#') || (partition !== undefined && o.pk !== partition)) throw new AuditCursorError();
  return o;
}
