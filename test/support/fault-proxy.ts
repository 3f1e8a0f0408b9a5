/**
 * A TCP proxy on 127.0.0.1 that puts faults on the network between a client and a real local
 * server (DynamoDB Local, the identity provider, a JWKS server), switchable at runtime:
 * - `pass`: bytes flow both ways;
 * - `hang`: new connections are accepted and never answered; bytes on open ones are dropped
 *   (the server never sees them), and so is a close, as with a peer that stopped answering.
 *   A connection that lost bytes to a hang stays hung after `pass()`, as a request stuck on a
 *   hung server instance would; new connections go through;
 * - `delay`: every chunk waits `delayMs` before it is forwarded, in both directions;
 * - `reset`: open connections are reset (RST) at once and new ones as they arrive, as with a
 *   peer that went away.
 * The mode applies to a chunk when it arrives, so switching back to `pass` lets new traffic
 * through at once. `stop()` closes the listener and every socket it ever opened.
 *
 * A fault may be scoped to the requests of one kind (`{ match }`): it then applies only to a
 * connection once its client has sent those bytes (an `x-amz-target` value, say, to fault
 * DynamoDB's BatchGetItem and let its Query through), from that chunk on, both ways, for as
 * long as the fault lasts; every other connection passes. Matching sees across chunk boundaries.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/** Which connections a fault applies to: all of them, or (`match`) those whose client sent these bytes. */
export interface FaultScope {
  match?: string | undefined;
}

export type FaultMode = { kind: 'pass' } | ({ kind: 'hang' } & FaultScope) | ({ kind: 'delay'; delayMs: number } & FaultScope) | ({ kind: 'reset' } & FaultScope);

export interface FaultProxy {
  /** `127.0.0.1:<port>` of the proxy. */
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly mode: FaultMode;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Sockets currently open (both sides of every connection). */
  readonly openSockets: number;
  /** Connections a scoped fault has applied to (their client sent its `match`) since it was set. */
  readonly matched: number;
  pass(): void;
  hang(scope?: FaultScope): void;
  delay(ms: number, scope?: FaultScope): void;
  reset(scope?: FaultScope): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: { host?: string; port: number }): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  let mode: FaultMode = { kind: 'pass' };
  /** Bumped at each switch of mode: a connection matched a scoped fault only if it did under this one. */
  let generation = 0;
  let matched = 0;
  let connections = 0;
  const setMode = (m: FaultMode) => {
    mode = m;
    generation++;
    matched = 0;
  };
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    // Faults end sockets abruptly; errors are the expected outcome, not a test failure.
    s.on('error', () => undefined);
  };

  const server: Server = createServer((client) => {
    connections++;
    track(client);
    if (mode.kind === 'reset' && mode.match === undefined) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: target.host ?? '127.0.0.1', port: target.port });
    track(upstream);
    let stuck = false;
    /** The generation in which this connection's client sent the current scope's `match`. */
    let matchedIn = -1;
    /** The end of what the client sent, so a `match` split across chunks is still seen. */
    let tail = '';
    /** The mode for this chunk on this connection: a scoped fault applies once the client sent its match. */
    const modeFor = (chunk: Buffer, fromClient: boolean): FaultMode => {
      const m = mode;
      if (m.kind === 'pass' || m.match === undefined) return m;
      if (fromClient && matchedIn !== generation) {
        const seen = tail + chunk.toString('latin1');
        if (seen.includes(m.match)) {
          matchedIn = generation;
          matched++;
        }
        tail = seen.slice(-(m.match.length - 1) || seen.length);
      }
      return matchedIn === generation ? m : { kind: 'pass' };
    };
    const forward = (from: Socket, to: Socket) => {
      const fromClient = from === client;
      from.on('data', (chunk: Buffer) => {
        const m = modeFor(chunk, fromClient);
        if (m.kind === 'reset') {
          client.resetAndDestroy();
          upstream.resetAndDestroy();
        } else if (m.kind === 'hang' || stuck) {
          // Lost: the peer never hears of it, nor of anything after it on this connection.
          stuck = true;
        } else if (m.kind === 'delay') {
          from.pause();
          setTimeout(() => {
            if (!to.destroyed) to.write(chunk);
            from.resume();
          }, m.delayMs);
        } else if (!to.destroyed) {
          to.write(chunk);
        }
      });
      // A hung network carries no FIN or RST either: the other side never learns of the close.
      const hung = () => stuck || (mode.kind === 'hang' && (mode.match === undefined || matchedIn === generation));
      from.once('end', () => !hung() && to.end());
      from.once('close', () => !hung() && to.destroy());
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    host: `127.0.0.1:${port}`,
    port,
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    get connections() {
      return connections;
    },
    get openSockets() {
      return sockets.size;
    },
    get matched() {
      return matched;
    },
    pass() {
      setMode({ kind: 'pass' });
    },
    hang(scope: FaultScope = {}) {
      setMode({ kind: 'hang', match: scope.match });
    },
    delay(delayMs: number, scope: FaultScope = {}) {
      setMode({ kind: 'delay', delayMs, match: scope.match });
    },
    reset(scope: FaultScope = {}) {
      setMode({ kind: 'reset', match: scope.match });
      // Scoped, it waits for a match: no open connection has sent one under this fault yet.
      if (scope.match === undefined) for (const s of sockets) s.resetAndDestroy();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        sockets.clear();
        server.close(() => resolve());
      }),
  };
}
