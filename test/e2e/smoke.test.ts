/**
 * `npm run smoke` against the local stack (what `npm start` runs), with a 2 s revocation bound:
 * the CLI passes and prints no secret; an interrupted run cleans up; and a broken configuration
 * (the 401 gateway response removed from the model the gateway serves, an origin the API does not
 * allow) fails with a line that says what is wrong.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AUDIENCE, ROOT, startLocalStack, type LocalStack } from '../../infra/local/local-stack.js';
import { runSmoke } from '../../infra/smoke/smoke.js';
import { createLatchkeyClient, data, LatchkeyProblem } from '../../packages/client/src/index.js';

const REVOCATION_CHECK_S = 2;
let stack: LocalStack;
let opsToken: string;

beforeAll(async () => {
  stack = await startLocalStack({
    apiPort: 0,
    idpPort: 0,
    assemblyDir: mkdtempSync(join(tmpdir(), 'latchkey-smoke-')),
    context: { revocationCheckSeconds: String(REVOCATION_CHECK_S) },
  });
  const ops = stack.idp.addUser({ email: 'smoke-ops@latchkey.local', password: 'not-used-here-1', name: 'Smoke Operator', roles: ['platform:admin'] });
  opsToken = await stack.idp.issueUserToken({ userId: ops.userId });
}, 300_000); // a hang detector for a loaded 2-core machine

afterAll(async () => {
  await stack?.stop();
});

interface CliRun {
  code: number | null;
  output: string;
}

/** `npm run smoke` as an operator runs it (tsx directly: npm adds nothing but a process). */
function smokeCli(args: string[], o: { interruptWhen?: RegExp } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/smoke.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, LATCHKEY_SMOKE_TOKEN: opsToken, LATCHKEY_SMOKE_CLIENT_ID: '', LATCHKEY_SMOKE_CLIENT_SECRET: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let interrupted = false;
    const collect = (c: Buffer) => {
      output += c.toString();
      if (o.interruptWhen && !interrupted && o.interruptWhen.test(output)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

/** The run's throwaway tenant is gone: deleted (disabled for good, or not found) and no key of it active. */
async function expectCleanedUp(tenantId: string | undefined): Promise<void> {
  expect(tenantId).toBeDefined();
  const ops = createLatchkeyClient({ baseUrl: stack.apiUrl, auth: { bearer: opsToken }, maxRetries: 0 });
  const path = { tenantId: tenantId! };
  const tenant = await data(ops.GET('/tenants/{tenantId}', { params: { path } })).catch((e: unknown) => e);
  if (tenant instanceof LatchkeyProblem) expect(tenant.status).toBe(404);
  else expect(tenant).toMatchObject({ status: 'disabled' });
  const keys = await data(ops.GET('/tenants/{tenantId}/api-keys', { params: { path } })).catch((e: unknown) => e);
  if (keys instanceof LatchkeyProblem) expect(keys.status).toBe(404);
  else expect((keys as { items: { status: string }[] }).items.filter((k) => k.status !== 'revoked')).toEqual([]);
}

const localArgs = () => ['--api-url', stack.apiUrl, '--issuer', stack.idp.issuer, '--audience', LOCAL_AUDIENCE, '--origin', stack.spa.origin, '--bound', String(REVOCATION_CHECK_S)];

describe('npm run smoke against the local stack', () => {
  it('passes every check, measures each path within the bound, cleans up, and prints no secret', async () => {
    const run = await smokeCli(localArgs());
    expect(run.output).toContain('smoke: all checks passed');
    expect(run.code).toBe(0);
    const table = run.output.slice(run.output.indexOf('check  '));
    for (const row of [
      'Bearer (operator) → 200 /me',
      'X-Api-Key alone → 200 /me',
      'Basic alone → 200 /me',
      'Bearer lk_ alone → 200 /me',
      "key's own Bearer token alone → 200 /me",
      'no credentials → 401 + WWW-Authenticate Bearer, Basic',
      'malformed key → 401',
      'unknown route → 404',
      'CORS preflight',
      'CORS on an answer (200)',
      'CORS on an error (401)',
      'clean-up: delete the tenant',
    ]) {
      expect(table, row).toMatch(new RegExp(`^${row.replace(/[()+.]/g, '\\$&')} +pass`, 'm'));
    }
    // Every credential path, for both the revoked key and the disabled tenant, refused within the bound.
    const refusals = [...table.matchAll(/^(revoked key|tenant disabled): (.+?) refused +(\S+) +([\d.]+) s/gm)];
    expect(refusals.map((m) => `${m[1]}: ${m[2]} ${m[3]}`).sort()).toEqual(
      ['revoked key', 'tenant disabled'].flatMap((l) => ['X-Api-Key', 'Basic', 'Bearer lk_', "key's own Bearer token"].map((p) => `${l}: ${p} pass`)).sort(),
    );
    console.log(`seconds to refusal (bound ${REVOCATION_CHECK_S} s): ${refusals.map((m) => `${m[1]}/${m[2]} ${m[4]}`).join(', ')}`);
    // Nothing secret: not the operator's token, no JWT, no lk_ key, no Basic credentials.
    expect(run.output).not.toContain(opsToken);
    expect(run.output).not.toMatch(/eyJ[\w-]{10,}/);
    expect(run.output).not.toMatch(/lk_[\w-]{20,}/);
    expect(run.output).not.toMatch(/Basic [A-Za-z0-9+/=]{12,}/);
    await expectCleanedUp(/create a throwaway tenant +pass +(smoke-[\w-]+)/.exec(table)?.[1]);
  }, 120_000);

  it('cleans up what it created when interrupted by SIGINT', async () => {
    const run = await smokeCli(localArgs(), { interruptWhen: /issue two API keys/ });
    expect(run.code).toBe(130);
    expect(run.output).toContain('SIGINT: stopping the checks and cleaning up');
    expect(run.output).toMatch(/^clean-up: delete the tenant +pass/m);
    expect(run.output).toMatch(/^clean-up: revoke key_\S+ +pass/m);
    await expectCleanedUp(/create a throwaway tenant \((smoke-[\w-]+)\)/.exec(run.output)?.[1]);
  }, 120_000);

  it('fails with a clear line when the 401 gateway response is missing or the origin is not allowed', async () => {
    const responses = stack.model.restApis[0]!.gatewayResponses;
    const unauthorized = responses.get('UNAUTHORIZED');
    expect(unauthorized).toBeDefined();
    responses.delete('UNAUTHORIZED');
    try {
      const report = await runSmoke({
        apiUrl: stack.apiUrl,
        issuer: stack.idp.issuer,
        audience: LOCAL_AUDIENCE,
        operator: { token: opsToken },
        origin: 'http://localhost:1',
        boundS: REVOCATION_CHECK_S,
      });
      expect(report.ok).toBe(false);
      const failed = report.results.filter((r) => r.result === 'FAIL').map((r) => `${r.check}: ${r.figure}`);
      expect(failed).toEqual([
        'no credentials → 401 + WWW-Authenticate Bearer, Basic: 401 without WWW-Authenticate (is the UNAUTHORIZED gateway response deployed?)',
        'CORS preflight: preflight: Access-Control-Allow-Origin is missing, expected http://localhost:1',
        'CORS on an answer (200): 200: Access-Control-Allow-Origin is missing, expected http://localhost:1',
        // The gateway responses name the one allowed origin, whoever asks.
        `CORS on an error (401): 401: Access-Control-Allow-Origin is "${stack.spa.origin}", expected http://localhost:1`,
      ]);
    } finally {
      responses.set('UNAUTHORIZED', unauthorized!);
    }
  }, 120_000);
});
