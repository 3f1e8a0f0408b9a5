/** A real HTTP(S) server that serves a JWKS document, with a request counter and failure switch. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

export interface JwksServer {
  uri: string;
  keys: JWK[];
  requests: number;
  /** 'down' answers 503; 'hang' never answers. */
  mode: 'ok' | 'down' | 'hang';
  close(): Promise<void>;
}

/** Serves over HTTPS with this certificate (for 127.0.0.1) when given, else plain HTTP. */
export interface JwksServerTls {
  key: string;
  cert: string;
}

export async function startJwksServer(keys: JWK[], tls?: JwksServerTls): Promise<JwksServer> {
  const state: Omit<JwksServer, 'uri' | 'close'> = { keys, requests: 0, mode: 'ok' };
  const listener = (_req: IncomingMessage, res: ServerResponse) => {
    state.requests++;
    if (state.mode === 'hang') return;
    if (state.mode === 'down') {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  };
  const server: Server = tls ? createTlsServer(tls, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    uri: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
