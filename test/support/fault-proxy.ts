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
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export type FaultMode = { kind: 'pass' } | { kind: 'hang' } | { kind: 'delay'; delayMs: number } | { kind: 'reset' };

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
  pass(): void;
  hang(): void;
  delay(ms: number): void;
  reset(): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: { host?: string; port: number }): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  let mode: FaultMode = { kind: 'pass' };
  let connections = 0;
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    // Faults end sockets abruptly; errors are the expected outcome, not a test failure.
    s.on('error', () => undefined);
  };

  const server: Server = createServer((client) => {
    connections++;
    track(client);
    if (mode.kind === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: target.host ?? '127.0.0.1', port: target.port });
    track(upstream);
    let stuck = false;
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => {
        const m = mode;
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
      from.once('end', () => mode.kind !== 'hang' && !stuck && to.end());
      from.once('close', () => mode.kind !== 'hang' && !stuck && to.destroy());
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
    pass() {
      mode = { kind: 'pass' };
    },
    hang() {
      mode = { kind: 'hang' };
    },
    delay(delayMs: number) {
      mode = { kind: 'delay', delayMs };
    },
    reset() {
      mode = { kind: 'reset' };
      for (const s of sockets) s.resetAndDestroy();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        sockets.clear();
        server.close(() => resolve());
      }),
  };
}
