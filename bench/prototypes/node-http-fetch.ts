/**
 * PROTOTYPE of a proposed change, for measurement only: the subset of `fetch` that
 * functions/core/jwks.ts uses (GET, headers, AbortSignal, status, text()), on node:http(s).
 * Node loads undici (and compiles its llhttp WebAssembly) on the first `fetch` of a process;
 * node:http is already loaded. Redirects are not followed (jwks.ts asks for redirect: 'error').
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export const nodeHttpFetch = ((input: string | URL, init: { headers?: Record<string, string>; signal?: AbortSignal } = {}) =>
  new Promise((resolve, reject) => {
    const url = new URL(String(input));
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers: init.headers, signal: init.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) return reject(new TypeError('redirect not allowed'));
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ ok: status >= 200 && status < 300, status, text: async () => body, headers: { get: (n: string) => res.headers[n.toLowerCase()] ?? null } });
      });
    });
    req.on('error', reject);
    req.end();
  })) as unknown as typeof fetch;
