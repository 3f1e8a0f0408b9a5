/**
 * A throwaway certificate for 127.0.0.1, made at run time with the machine's `openssl` (never
 * committed): aws-jwt-verify fetches a JWKS over https only, so the cold-start comparison serves
 * the key set over TLS and children trust the certificate through `NODE_EXTRA_CA_CERTS`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';

export interface ThrowawayCertificate {
  key: string;
  cert: string;
  /** PEM file of the certificate, for `NODE_EXTRA_CA_CERTS`. */
  certFile: string;
}

export function throwawayCertificate(dir: string): ThrowawayCertificate {
  const keyFile = join(dir, 'jwks-key.pem');
  const certFile = join(dir, 'jwks-cert.pem');
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    throw new Error(`the cold-start case needs openssl (OpenSSL 1.1.1 or later) to make a throwaway certificate: ${(err as Error).message}`);
  }
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

export interface TlsFront {
  /** `https://127.0.0.1:<port>`: the target behind TLS with the throwaway certificate. */
  url: string;
  close(): Promise<void>;
}

/**
 * A TLS front for a plain-TCP local service (DynamoDB Local speaks HTTP only): deployed, the
 * authorizer reaches DynamoDB over https, and a cold start that read its state over plain HTTP
 * would leave out the TLS connection it makes in AWS. Nagle is off on both legs, or small
 * request writes would wait for delayed ACKs (40 ms) and time the proxy instead of the client.
 */
export async function startTlsFront(targetPort: number, cert: ThrowawayCertificate): Promise<TlsFront> {
  const sockets = new Set<Socket>();
  const server = createTlsServer({ key: cert.key, cert: cert.cert }, (client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
