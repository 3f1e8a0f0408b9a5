import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeHttpClient } from '../../functions/adapters/node-http-client.js';
import { json, startScriptedServer, type ScriptedServer } from '../support/http-server.js';

let server: ScriptedServer;
beforeAll(async () => {
  server = await startScriptedServer((_req, res) => json(res, 200, {}));
});
afterAll(() => server.close());

describe('nodeHttpClient', () => {
  it('sends method, headers and body, and reads status, headers and body', async () => {
    server.respond = (req, res) => json(res, 201, { echo: req.body, method: req.method, h: req.headers['x-test'] }, { 'X-Reply': 'yes' });
    const res = await nodeHttpClient(`${server.url}/p?q=1`, { method: 'POST', headers: { 'x-test': 'abc', 'content-type': 'text/plain' }, body: 'hello' });
    expect(res.status).toBe(201);
    expect(res.ok).toBe(true);
    expect(res.headers.get('x-reply')).toBe('yes');
    expect(res.headers.get('missing')).toBeNull();
    expect(JSON.parse(await res.text())).toEqual({ echo: 'hello', method: 'POST', h: 'abc' });
    expect(server.requests.at(-1)!.url).toBe('/p?q=1');
  });

  it('reports non-2xx answers as not ok', async () => {
    server.respond = (_req, res) => json(res, 503, { error: 'down' });
    const res = await nodeHttpClient(server.url);
    expect(res.ok).toBe(false);
    expect(res.status).toBe(503);
  });

  it('aborts on the signal, refuses redirects when asked, and refuses oversized bodies', async () => {
    server.respond = () => undefined; // never answers
    await expect(nodeHttpClient(server.url, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    server.respond = (_req, res) => res.writeHead(302, { Location: 'http://127.0.0.1:9/' }).end();
    await expect(nodeHttpClient(server.url, { redirect: 'error' })).rejects.toThrow(/redirect/);
    server.respond = (_req, res) => res.writeHead(200).end(Buffer.alloc(2 * 1024 * 1024, 120));
    await expect(nodeHttpClient(server.url)).rejects.toThrow(/too large/);
  });
});
