/** A real HTTP server that serves a JWKS document, with a request counter and failure switch. */
import { createServer, type Server } from 'node:http';
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

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  const state: Omit<JwksServer, 'uri' | 'close'> = { keys, requests: 0, mode: 'ok' };
  const server: Server = createServer((req, res) => {
    state.requests++;
    if (state.mode === 'hang') return;
    if (state.mode === 'down') {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    uri: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
