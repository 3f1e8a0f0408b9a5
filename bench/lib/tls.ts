/**
 * A throwaway certificate for 127.0.0.1, made at run time with the machine's `openssl` (never
 * committed): aws-jwt-verify fetches a JWKS over https only, so the cold-start comparison serves
 * the key set over TLS and children trust the certificate through `NODE_EXTRA_CA_CERTS`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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
