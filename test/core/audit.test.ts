import { describe, expect, it } from 'vitest';
import { canonicalJson, eventHash, GENESIS_HASH, verifyChain, type AuditEvent } from '../../functions/core/audit.js';

function chain(n: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const unsigned = {
      partition: 'tenant#acme',
      tenantId: 'acme',
      seq,
      at: new Date(Date.UTC(2026, 10, 30, 8, 0, seq)).toISOString(),
      eventId: `e${seq}`,
      prevHash: out.at(-1)?.hash ?? GENESIS_HASH,
      action: 'key.issue' as const,
      target: { type: 'key' as const, id: `key_${seq}` },
      actor: { principalId: 'u1', authMethod: 'jwt' as const },
      request: { requestId: `r${seq}` },
      outcome: 'success' as const,
      status: 201,
    };
    out.push({ ...unsigned, hash: eventHash(unsigned) });
  }
  return out;
}

describe('the hash chain', () => {
  it('hashes a canonical form: key order and undefined members do not matter', () => {
    expect(canonicalJson({ b: 1, a: [{ d: undefined, c: 'x' }] })).toBe('{"a":[{"c":"x"}],"b":1}');
    const [e] = chain(1);
    expect(eventHash({ ...e!, details: undefined })).toBe(e!.hash);
  });

  it('verifies an intact chain and one whose oldest events expired', () => {
    expect(verifyChain(chain(5), 5)).toEqual({ ok: true, checked: 5, firstSeq: 1, lastSeq: 5 });
    expect(verifyChain(chain(5).slice(2), 5)).toMatchObject({ ok: true, checked: 3, firstSeq: 3 });
  });

  it('names the first edited, removed or reordered event, and events missing at the end', () => {
    const edited = chain(5);
    edited[2] = { ...edited[2]!, outcome: 'refused' };
    expect(verifyChain(edited, 5).firstBreak).toEqual({ seq: 3, eventId: 'e3', reason: 'hash-mismatch' });
    const removed = chain(5).filter((e) => e.seq !== 3);
    expect(verifyChain(removed, 5).firstBreak).toEqual({ seq: 3, eventId: undefined, reason: 'sequence-gap' });
    const rehashed = chain(5);
    const { hash: _h, ...rest } = { ...rehashed[1]!, actor: { principalId: 'x', authMethod: 'jwt' as const } };
    rehashed[1] = { ...rest, hash: eventHash(rest) };
    expect(verifyChain(rehashed, 5).firstBreak).toEqual({ seq: 3, eventId: 'e3', reason: 'prev-hash-mismatch' });
    expect(verifyChain(chain(4), 5).firstBreak).toEqual({ seq: 5, eventId: undefined, reason: 'head-mismatch' });
    const forgedFirst = chain(2);
    forgedFirst[0] = { ...forgedFirst[0]!, prevHash: 'f'.repeat(64) };
    expect(verifyChain(forgedFirst, 2).firstBreak).toMatchObject({ seq: 1, reason: 'prev-hash-mismatch' });
  });
});
