/**
 * How principal state is laid out in the token-cache table, shared by the writer
 * (`DynamoDbTokenCache`) and the authorizer's light feed reader (`DynamoDbStateFeed`), which
 * must not import the AWS SDK's DynamoDB client.
 */
import type { PrincipalKind, PrincipalState, PrincipalStatus } from '../core/principal-state.js';

export const statePk = (kind: PrincipalKind, id: string) => `${kind}#${id}`;
/** The sparse index over state items, by time of change (partition `feed`, sort `changedAt`). */
export const STATE_FEED_INDEX = 'state-feed';
/** The attributes the index projects besides its keys and `pk` (what `toPrincipalState` reads). */
export const STATE_FEED_ATTRIBUTES = ['stateKind', 'status', 'revokedAt', 'notBefore', 'tenantId', 'keyId', 'createdAt', 'revoked'] as const;
/** The value of `feed` on every state item. */
export const FEED = 'state';
/** Items per page of the feed: well under the 1 MB DynamoDB reads per page. */
export const STATE_FEED_PAGE = 1000;
const KINDS: readonly PrincipalKind[] = ['client', 'user', 'tenant'];
const STATUSES: readonly PrincipalStatus[] = ['active', 'revoked', 'blocked', 'deleted', 'disabled'];

/** The feed query's key condition, with values as the document client (`native`) or the wire protocol takes them. */
export function STATE_FEED_QUERY(sinceMs: number | undefined, form: 'native' | 'wire') {
  const f = form === 'native' ? FEED : { S: FEED };
  const since = sinceMs === undefined ? undefined : form === 'native' ? sinceMs : { N: String(sinceMs) };
  return {
    IndexName: STATE_FEED_INDEX,
    KeyConditionExpression: since === undefined ? 'feed = :f' : 'feed = :f AND changedAt >= :since',
    ExpressionAttributeValues: since === undefined ? { ':f': f } : { ':f': f, ':since': since },
  };
}

/**
 * A state item, or `undefined` for none. Items written before the state model (revocation
 * markers `{ revoked, revokedAt, notBefore }` of a client, or only `lastUsedAt`) keep their
 * meaning: a marker is a revoked client, a not-before still applies, a bare item is no state.
 */
export function toPrincipalState(item: Record<string, unknown> | undefined): PrincipalState | undefined {
  if (!item || typeof item.pk !== 'string') return undefined;
  const hash = item.pk.indexOf('#');
  const kind = item.pk.slice(0, hash) as PrincipalKind;
  if (hash < 0 || !KINDS.includes(kind)) return undefined;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  let status = item.status as PrincipalStatus;
  if (!STATUSES.includes(status)) {
    if (item.revoked === true) status = 'revoked';
    else if (num(item.notBefore) > 0) status = 'active';
    else return undefined;
  }
  return {
    kind,
    id: item.pk.slice(hash + 1),
    status,
    revokedAt: status === 'revoked' ? num(item.revokedAt) : 0,
    notBefore: num(item.notBefore),
    changedAt: num(item.changedAt) || num(item.revokedAt) || num(item.notBefore),
    tenantId: str(item.tenantId),
    keyId: str(item.keyId),
    createdAt: typeof item.createdAt === 'number' ? item.createdAt : undefined,
  };
}

/**
 * Point reads of state items, for a client of either protocol: `batch` sends one BatchGetItem
 * (strongly consistent) of these keys and answers the items found (as plain values) and the keys
 * left unprocessed. Those are asked again once; still unprocessed, the read has failed.
 */
export async function statesByKeys<K>(
  keys: readonly { kind: PrincipalKind; id: string }[],
  toKey: (pk: string) => K,
  batch: (keys: K[]) => Promise<{ items: Record<string, unknown>[]; unprocessed: K[] }>,
): Promise<PrincipalState[]> {
  let request = keys.map((k) => toKey(statePk(k.kind, k.id)));
  const states: PrincipalState[] = [];
  for (let attempt = 0; request.length > 0; attempt++) {
    if (attempt === 2) throw new Error('DynamoDB BatchGetItem left keys unprocessed');
    const { items, unprocessed } = await batch(request);
    for (const item of items) {
      const state = toPrincipalState(item);
      if (state) states.push(state);
    }
    request = unprocessed;
  }
  return states;
}
