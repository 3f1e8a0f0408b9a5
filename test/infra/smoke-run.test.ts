/**
 * The smoke check's own behaviour, over a fake API: a failed step still cleans up, a secret the
 * API echoes back never reaches a result, and a machine operator's token comes from the issuer.
 */
import { describe, expect, it } from 'vitest';
import { runSmoke } from '../../infra/smoke/smoke.js';

const API = 'https://api.example.test/v1';
const ISSUER = 'https://issuer.example.test/';
const OPS_TOKEN = 'eyJops.operator-token-secret.sig';

interface Call {
  method: string;
  path: string;
  authorization: string | null;
}

/** A fake Latchkey whose key issuance fails with a body that echoes the caller's Authorization header. */
function fakeLatchkey(calls: Call[]): typeof globalThis.fetch {
  const json = (status: number, body: unknown) => new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  return async (input, init) => {
    const req = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(req.url);
    const authorization = req.headers.get('authorization');
    calls.push({ method: req.method, path: url.pathname, authorization });
    if (url.href === `${ISSUER}.well-known/openid-configuration`) return json(200, { token_endpoint: `${ISSUER}oauth/token` });
    if (url.href === `${ISSUER}oauth/token`) {
      const form = new URLSearchParams(await req.text());
      if (form.get('client_id') === 'smoke-client' && form.get('client_secret') === 'smoke-client-secret' && form.get('audience') === 'https://api.example.test') return json(200, { access_token: OPS_TOKEN });
      return json(401, { error: 'access_denied' });
    }
    const path = url.pathname.replace('/v1', '');
    if (authorization !== `Bearer ${OPS_TOKEN}`) return json(401, { type: 'https://latchkey.dev/problems/unauthorized' });
    if (req.method === 'GET' && path === '/me') return json(200, { authMethod: 'jwt', roles: ['platform:admin'] });
    if (req.method === 'POST' && path === '/tenants') return json(201, { ...((await req.json()) as object), status: 'active' });
    if (req.method === 'POST' && path.endsWith('/api-keys')) return json(500, { type: 'https://latchkey.dev/problems/internal', title: 'Internal error', status: 500, detail: `boom for ${authorization}` });
    if (req.method === 'DELETE' && /^\/tenants\/smoke-[\w-]+$/.test(path)) return json(204, undefined);
    return json(404, { type: 'https://latchkey.dev/problems/not-found' });
  };
}

describe('runSmoke', () => {
  it('deletes the tenant it created when a later step fails, and never reports a secret', async () => {
    const calls: Call[] = [];
    const report = await runSmoke({ apiUrl: API, issuer: ISSUER, operator: { token: OPS_TOKEN }, fetch: fakeLatchkey(calls), boundS: 1 });
    expect(report.ok).toBe(false);
    expect(report.results.map((r) => [r.check, r.result])).toEqual([
      ['Bearer (operator) → 200 /me', 'pass'],
      ['create a throwaway tenant', 'pass'],
      ['issue two API keys', 'FAIL'],
      ['clean-up: delete the tenant', 'pass'],
    ]);
    const failed = report.results.find((r) => r.result === 'FAIL')!;
    expect(failed.figure).toBe('500 internal: boom for Bearer ***');
    expect(JSON.stringify(report)).not.toContain(OPS_TOKEN);
    const tenantId = report.results[1]!.figure;
    expect(calls.at(-1)).toMatchObject({ method: 'DELETE', path: `/v1/tenants/${tenantId}` });
  });

  it('exchanges a machine operator\'s client id and secret at the issuer\'s token endpoint, with the audience', async () => {
    const calls: Call[] = [];
    const report = await runSmoke({
      apiUrl: API,
      issuer: ISSUER,
      audience: 'https://api.example.test',
      operator: { clientId: 'smoke-client', clientSecret: 'smoke-client-secret' },
      fetch: fakeLatchkey(calls),
    });
    expect(report.results.slice(0, 3).map((r) => [r.check, r.result])).toEqual([
      ['operator token from the token endpoint', 'pass'],
      ['Bearer (operator) → 200 /me', 'pass'],
      ['create a throwaway tenant', 'pass'],
    ]);
    expect(JSON.stringify(report)).not.toMatch(/smoke-client-secret|operator-token-secret/);
  });

  it('stops at once when aborted, and still cleans up', async () => {
    const calls: Call[] = [];
    const abort = new AbortController();
    const fetch = fakeLatchkey(calls);
    const report = await runSmoke({
      apiUrl: API,
      issuer: ISSUER,
      operator: { token: OPS_TOKEN },
      signal: abort.signal,
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (calls.at(-1)?.path === '/v1/tenants' && calls.at(-1)?.method === 'POST') abort.abort(new Error('interrupted by SIGINT'));
        return res;
      },
    });
    expect(report.results.map((r) => [r.check, r.result, r.figure])).toEqual([
      ['Bearer (operator) → 200 /me', 'pass', expect.any(String)],
      ['create a throwaway tenant', 'pass', expect.stringMatching(/^smoke-/)],
      ['run', 'FAIL', 'interrupted'],
      ['clean-up: delete the tenant', 'pass', ''],
    ]);
  });
});
