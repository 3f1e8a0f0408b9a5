/**
 * `HttpClient` on `node:http`/`node:https` with keep-alive agents: what the authorizer uses to
 * fetch the JWKS and call the token endpoint without loading undici at cold start. Redirects
 * are never followed (the callers refuse them) and the body is limited in size.
 */
import type * as NodeHttp from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { HttpClient, HttpResponse } from '../core/http-client.js';

const MAX_BODY_BYTES = 1024 * 1024;
const httpsAgent = new HttpsAgent({ keepAlive: true });
/** Plain HTTP serves only local issuers: its module is loaded on first use, not at every cold start. */
let http: { request: typeof NodeHttp.request; agent: NodeHttp.Agent } | undefined;
function plainHttp() {
  if (!http) {
    const mod = process.getBuiltinModule('node:http');
    http = { request: mod.request, agent: new mod.Agent({ keepAlive: true }) };
  }
  return http;
}

function toResponse(res: NodeHttp.IncomingMessage, body: string): HttpResponse {
  const status = res.statusCode ?? 0;
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: {
      get(name: string) {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    },
    text: () => Promise.resolve(body),
  };
}

export const nodeHttpClient: HttpClient = (url, init = {}) =>
  new Promise<HttpResponse>((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    if (!secure && target.protocol !== 'http:') return reject(new Error(`unsupported protocol ${target.protocol}`));
    const plain = secure ? undefined : plainHttp();
    const req = (plain?.request ?? httpsRequest)(
      target,
      { method: init.method ?? 'GET', headers: init.headers, agent: plain?.agent ?? httpsAgent, signal: init.signal },
      (res) => {
        if ((res.statusCode ?? 0) >= 300 && (res.statusCode ?? 0) < 400 && init.redirect === 'error') {
          res.resume();
          return reject(new Error(`redirect refused (${res.statusCode})`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy(new Error('response body too large'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve(toResponse(res, Buffer.concat(chunks).toString('utf8'))));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
