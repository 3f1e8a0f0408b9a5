import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { orHang } from './hang.js';

/** An upstream that answers every chunk with `echo:<chunk>` and counts what it received. */
let upstream: Server;
let upstreamPort: number;
let received: string[];
const upstreamSockets = new Set<Socket>();
let proxy: FaultProxy;

beforeAll(async () => {
  upstream = createServer((s) => {
    upstreamSockets.add(s);
    s.once('close', () => upstreamSockets.delete(s));
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      received.push(c.toString());
      s.write(`echo:${c.toString()}`);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));

beforeEach(async () => {
  received = [];
  proxy = await startFaultProxy({ port: upstreamPort });
});
afterEach(() => proxy.stop());

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: proxy.port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** The first answer on the socket, or how the socket ended instead. */
function exchange(s: Socket, text: string, waitMs = 300): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('no answer'), waitMs);
    s.once('data', (c: Buffer) => {
      clearTimeout(timer);
      resolve(c.toString());
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? 'error');
    });
    s.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
    s.write(text);
  });
}

describe('fault proxy', () => {
  it('passes bytes both ways', async () => {
    const s = await open();
    expect(await exchange(s, 'hello', 10_000)).toBe('echo:hello');
    expect(received).toEqual(['hello']);
    expect(proxy.connections).toBe(1);
    s.destroy();
  });

  it('hangs: the upstream never sees the bytes and the client never gets an answer; pass lets new traffic through', async () => {
    proxy.hang();
    const held = await open();
    expect(await exchange(held, 'lost')).toBe('no answer');
    expect(received).toEqual([]);
    proxy.pass();
    const s = await open();
    expect(await exchange(s, 'again', 10_000)).toBe('echo:again');
    expect(received).toEqual(['again']);
    // The connection that lost bytes stays hung, as a request stuck on a hung server would.
    expect(await exchange(held, 'still lost')).toBe('no answer');
    expect(received).toEqual(['again']);
    held.destroy();
    s.destroy();
  });

  it('hangs a connection that was already open', async () => {
    const s = await open();
    expect(await exchange(s, 'one', 10_000)).toBe('echo:one');
    proxy.hang();
    expect(await exchange(s, 'two')).toBe('no answer');
    expect(received).toEqual(['one']);
    s.destroy();
  });

  it('hangs a close as well: the client does not learn that the upstream closed', async () => {
    const s = await open();
    expect(await exchange(s, 'one', 10_000)).toBe('echo:one');
    proxy.hang();
    for (const u of upstreamSockets) u.destroy();
    expect(await exchange(s, 'two')).toBe('no answer');
    expect(s.destroyed).toBe(false);
    s.destroy();
  });

  it('delays each chunk by at least the given time', async () => {
    proxy.delay(200);
    const s = await open();
    const started = performance.now();
    expect(await exchange(s, 'slow', 20_000)).toBe('echo:slow');
    // Two hops (request and answer), each held at least 200 ms: a lower bound holds on any machine.
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    s.destroy();
  });

  it('resets new connections and the ones already open', async () => {
    const s = await open();
    expect(await exchange(s, 'before', 10_000)).toBe('echo:before');
    const ended = new Promise<string>((resolve) => {
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.once('close', () => resolve('closed'));
    });
    proxy.reset();
    expect(['ECONNRESET', 'closed']).toContain(await ended);
    const fresh = connect({ host: '127.0.0.1', port: proxy.port });
    const outcome = await new Promise<string>((resolve) => {
      fresh.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      fresh.once('close', () => resolve('closed'));
      fresh.once('data', () => resolve('data'));
      fresh.write('after');
    });
    expect(['ECONNRESET', 'EPIPE', 'closed']).toContain(outcome);
    expect(received).toEqual(['before']);
  });

  it('closes every socket it opened on stop, and refuses connections afterwards', async () => {
    const a = await open();
    const b = await open();
    expect(await exchange(a, 'a', 10_000)).toBe('echo:a');
    expect(await exchange(b, 'b', 10_000)).toBe('echo:b');
    expect(proxy.openSockets).toBe(4);
    const closed = Promise.all([a, b].map((s) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r())))));
    await proxy.stop();
    await closed;
    expect(proxy.openSockets).toBe(0);
    // The upstream side of each connection is closed too.
    // Waits on their close events (a hang detector bounds it), not on a 2 s poll a loaded machine may outlast.
    await orHang(Promise.all([...upstreamSockets].map((s) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r()))))));
    expect(upstreamSockets.size).toBe(0);
    const refused = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: proxy.port });
      s.once('connect', () => resolve('connected'));
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  describe('scoped to the requests that carry a string', () => {
    const TARGET = 'x-amz-target: DynamoDB_20120810.BatchGetItem';

    it('hangs only a connection whose client sent the string, from that chunk on, even when it arrives split', async () => {
      proxy.hang({ match: TARGET });
      const other = await open();
      expect(await exchange(other, 'x-amz-target: DynamoDB_20120810.Query', 10_000)).toBe('echo:x-amz-target: DynamoDB_20120810.Query');
      const split = await open();
      expect(await exchange(split, 'x-amz-target: Dynamo', 10_000)).toBe('echo:x-amz-target: Dynamo');
      expect(await exchange(split, 'DB_20120810.BatchGetItem')).toBe('no answer');
      expect(received).toEqual(['x-amz-target: DynamoDB_20120810.Query', 'x-amz-target: Dynamo']);
      expect(proxy.matched).toBe(1);
      // The connection that did not match still passes, while the fault lasts.
      expect(await exchange(other, 'again', 10_000)).toBe('echo:again');
      proxy.pass();
      // As with a hang of every connection: the one that lost bytes stays hung, new ones pass.
      expect(await exchange(split, 'after')).toBe('no answer');
      const fresh = await open();
      expect(await exchange(fresh, TARGET, 10_000)).toBe(`echo:${TARGET}`);
      for (const s of [other, split, fresh]) s.destroy();
    });

    it('resets only a connection whose client sent the string, and only when it does', async () => {
      const open1 = await open();
      expect(await exchange(open1, 'before', 10_000)).toBe('echo:before');
      proxy.reset({ match: TARGET });
      // Open connections are not reset when the fault is set: none has sent the string under it.
      expect(await exchange(open1, 'still fine', 10_000)).toBe('echo:still fine');
      expect(['ECONNRESET', 'closed']).toContain(await exchange(open1, `POST / ${TARGET}`, 10_000));
      const fresh = await open();
      expect(['ECONNRESET', 'closed']).toContain(await exchange(fresh, TARGET, 10_000));
      const other = await open();
      expect(await exchange(other, 'Query', 10_000)).toBe('echo:Query');
      expect(received).toEqual(['before', 'still fine', 'Query']);
      expect(proxy.matched).toBe(2);
      other.destroy();
    });

    it('delays only a connection whose client sent the string, both ways', async () => {
      proxy.delay(200, { match: TARGET });
      const other = await open();
      expect(await exchange(other, 'Query', 10_000)).toBe('echo:Query');
      const s = await open();
      const started = performance.now();
      expect(await exchange(s, TARGET, 20_000)).toBe(`echo:${TARGET}`);
      // Two hops (request and answer), each held at least 200 ms: a lower bound holds on any machine.
      expect(performance.now() - started).toBeGreaterThanOrEqual(390);
      expect(proxy.matched).toBe(1);
      // A new fault starts afresh: a connection counts only once its client sends the string under it.
      proxy.hang({ match: TARGET });
      expect(proxy.matched).toBe(0);
      expect(await exchange(s, 'plain', 10_000)).toBe('echo:plain');
      for (const c of [other, s]) c.destroy();
    });
  });
});
