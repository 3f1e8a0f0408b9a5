/**
 * The post-deploy check behind `npm run smoke`: against a running Latchkey (deployed, or `npm
 * start`'s), it creates a throwaway tenant and two API keys, calls with each credential form
 * alone, checks the 401/404 answers and CORS, then revokes one key and disables the tenant and
 * measures, per credential path, the seconds until each is refused, against the revocation bound.
 * Everything it created is removed again, also when a step fails or the run is aborted.
 *
 * No AWS import here: the stack's outputs are read by `stack-outputs.ts`, the CLI is `scripts/smoke.ts`.
 * Results carry names and figures only; any text from a failure is scrubbed of every secret the run holds.
 */
import { randomBytes } from 'node:crypto';
import { basicAuthorization, createLatchkeyClient, data, LatchkeyProblem, PROBLEM_BASE, type ApiKeyWithSecret, type LatchkeyClient } from '../../packages/client/src/index.js';

/** The documented bound (`REVOCATION_CHECK_S` default). */
export const DEFAULT_BOUND_S = 30;
/** Added to the bound for request latency and the state index catching up before a refusal is late. */
export const DEFAULT_SLACK_S = 5;

export type OperatorCredential = { token: string } | { clientId: string; clientSecret: string };

export interface SmokeOptions {
  /** The stage's base URL (the `ApiUrl` output). */
  apiUrl: string;
  /** The issuer (`iss`, trailing slash as the provider writes it); its discovery document names the token endpoint. */
  issuer: string;
  /** The API identifier requested at the token endpoint (`audience=`); without it the key's own bearer token is not tried. */
  audience?: string;
  operator: OperatorCredential;
  /** An origin the stack allows; without it the CORS checks are skipped. */
  origin?: string;
  /** @default DEFAULT_BOUND_S */
  boundS?: number;
  /** @default DEFAULT_SLACK_S */
  slackS?: number;
  /** @default 250 */
  pollMs?: number;
  /** Aborting stops the checks; the clean-up still runs. */
  signal?: AbortSignal;
  /** Called as each row is decided (for progress output). */
  onResult?: (r: CheckResult) => void;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

export type Outcome = 'pass' | 'FAIL' | 'skip';

export interface CheckResult {
  check: string;
  result: Outcome;
  /** A measurement or a short reason; never a secret. */
  figure: string;
}

export interface SmokeReport {
  ok: boolean;
  results: CheckResult[];
  /** Seconds until refusal per credential path, for the key's revocation and the tenant's disabling. */
  revocationS: Record<string, number | undefined>;
  disableS: Record<string, number | undefined>;
}

class CheckFailed extends Error {}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** One credential form: the headers that carry it. */
interface CredentialPath {
  name: string;
  headers: Record<string, string>;
}

function keyPaths(key: ApiKeyWithSecret, ownToken: string | undefined): CredentialPath[] {
  const apiKey = String(key.apiKey);
  const paths: CredentialPath[] = [
    { name: 'X-Api-Key', headers: { 'X-Api-Key': apiKey } },
    { name: 'Basic', headers: { Authorization: basicAuthorization(key.clientId, String(key.clientSecret)) } },
    { name: 'Bearer lk_', headers: { Authorization: `Bearer ${apiKey}` } },
  ];
  if (ownToken) paths.push({ name: "key's own Bearer token", headers: { Authorization: `Bearer ${ownToken}` } });
  return paths;
}

const listHas = (value: string | null, item: string) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .includes(item.toLowerCase());

export async function runSmoke(o: SmokeOptions): Promise<SmokeReport> {
  const doFetch: typeof globalThis.fetch = o.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const boundS = o.boundS ?? DEFAULT_BOUND_S;
  const slackS = o.slackS ?? DEFAULT_SLACK_S;
  const pollMs = o.pollMs ?? 250;
  const api = o.apiUrl.replace(/\/+$/, '');
  const secrets: string[] = [];
  const keep = (s: string | undefined) => {
    if (s && s.length >= 6) secrets.push(s);
    return s;
  };
  if ('token' in o.operator) keep(o.operator.token);
  else keep(o.operator.clientSecret);
  const scrub = (text: string) => secrets.reduce((t, s) => t.split(s).join('***'), text).replace(/\s+/g, ' ').slice(0, 160);
  const results: CheckResult[] = [];
  const report: SmokeReport = { ok: false, results, revocationS: {}, disableS: {} };
  const record = (check: string, result: Outcome, figure: string) => {
    const r = { check, result, figure: scrub(figure) };
    results.push(r);
    o.onResult?.(r);
    return r;
  };
  const describe = (err: unknown) => (err instanceof LatchkeyProblem ? `${err.status} ${err.type.replace(PROBLEM_BASE, '')}${err.detail ? `: ${err.detail}` : ''}` : err instanceof Error ? err.message : String(err));
  /** Runs one check; a throw is recorded as its failure. `fatal` checks stop the run (what follows depends on them). */
  const check = async (name: string, fn: () => Promise<string>, fatal = false): Promise<boolean> => {
    o.signal?.throwIfAborted();
    const started = performance.now();
    try {
      const figure = await fn();
      record(name, 'pass', figure || `${Math.round(performance.now() - started)} ms`);
      return true;
    } catch (err) {
      if (o.signal?.aborted) throw err;
      record(name, 'FAIL', describe(err));
      if (fatal) throw new CheckFailed(name);
      return false;
    }
  };
  const call = async (path: string, headers: Record<string, string>, method = 'GET') => {
    const res = await doFetch(`${api}${path}`, { method, headers, signal: o.signal ?? null });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      body = {};
    }
    return { status: res.status, headers: res.headers, body };
  };
  const expectStatus = (what: string, got: number, want: number, body: Record<string, unknown>) => {
    if (got !== want) throw new CheckFailed(`${what} answered ${got}${typeof body.type === 'string' ? ` ${body.type.replace(PROBLEM_BASE, '')}` : ''}, expected ${want}`);
  };

  // What the run created, for the clean-up.
  const tenantId = `smoke-${new Date().toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(4).toString('hex')}`;
  // Set before the request: an answer lost on the way may hide a tenant that was created.
  let tenantAttempted = false;
  let tenantCreated = false;
  const keys: { keyId: string; revoked: boolean }[] = [];
  let ops: LatchkeyClient | undefined;

  try {
    // The operator's credential and the token endpoint.
    let tokenEndpoint: string | undefined;
    const discover = async () => {
      if (tokenEndpoint) return tokenEndpoint;
      const url = `${o.issuer.replace(/\/?$/, '/')}.well-known/openid-configuration`;
      const res = await doFetch(url, { signal: o.signal ?? null });
      if (!res.ok) throw new Error(`discovery document answered ${res.status}`);
      const doc = (await res.json()) as { token_endpoint?: unknown };
      if (typeof doc.token_endpoint !== 'string') throw new Error('the discovery document names no token_endpoint');
      return (tokenEndpoint = doc.token_endpoint);
    };
    const clientCredentials = async (clientId: string, clientSecret: string) => {
      if (!o.audience) throw new Error('no audience given');
      const res = await doFetch(await discover(), {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, audience: o.audience }),
        signal: o.signal ?? null,
      });
      const body = (await res.json().catch(() => ({}))) as { access_token?: unknown; error?: unknown };
      if (!res.ok || typeof body.access_token !== 'string') throw new Error(`token endpoint answered ${res.status}${typeof body.error === 'string' ? ` ${body.error}` : ''}`);
      return keep(body.access_token)!;
    };
    let operatorToken = 'token' in o.operator ? o.operator.token : undefined;
    if (!('token' in o.operator)) {
      const { clientId, clientSecret } = o.operator;
      await check('operator token from the token endpoint', async () => {
        operatorToken = await clientCredentials(clientId, clientSecret);
        return '';
      }, true);
    }
    ops = createLatchkeyClient({ baseUrl: api, auth: { bearer: operatorToken! }, fetch: (r) => doFetch(r) });

    await check('Bearer (operator) → 200 /me', async () => {
      const r = await call('/me', { Authorization: `Bearer ${operatorToken}` });
      expectStatus('GET /me', r.status, 200, r.body);
      return `authMethod=${String(r.body.authMethod)}`;
    }, true);

    await check('create a throwaway tenant', async () => {
      tenantAttempted = true;
      await data(ops!.POST('/tenants', { body: { tenantId, name: 'Latchkey smoke test (throwaway)' } }));
      tenantCreated = true;
      return tenantId;
    }, true);

    const issued: ApiKeyWithSecret[] = [];
    await check('issue two API keys', async () => {
      for (const name of ['smoke: revoked', 'smoke: tenant disabled']) {
        const key = await data(ops!.POST('/tenants/{tenantId}/api-keys', { params: { path: { tenantId } }, body: { name, scopes: ['users:read'] } }));
        keys.push({ keyId: key.keyId, revoked: false });
        keep(String(key.apiKey));
        keep(String(key.clientSecret));
        keep(basicAuthorization(key.clientId, String(key.clientSecret)).slice('Basic '.length));
        issued.push(key);
      }
      return issued.map((k) => k.keyId).join(', ');
    }, true);
    const [keyA, keyB] = issued as [ApiKeyWithSecret, ApiKeyWithSecret];

    // The key's own tokens, fetched now: once the key is revoked the provider may refuse to issue more.
    const ownTokens: (string | undefined)[] = [undefined, undefined];
    if (o.audience) {
      await check("the key's own token from the token endpoint", async () => {
        // New credentials may take a while to be accepted (Auth0: up to 30 s).
        const until = Date.now() + 40_000;
        for (;;) {
          try {
            ownTokens[0] = await clientCredentials(keyA.clientId, String(keyA.clientSecret));
            ownTokens[1] = await clientCredentials(keyB.clientId, String(keyB.clientSecret));
            return '';
          } catch (err) {
            if (Date.now() > until) throw err;
            await sleep(2000, o.signal);
          }
        }
      });
    } else {
      record("the key's own token from the token endpoint", 'skip', 'no audience given');
    }
    const pathsA = keyPaths(keyA, ownTokens[0]);
    const pathsB = keyPaths(keyB, ownTokens[1]);

    for (const p of pathsA) {
      await check(`${p.name} alone → 200 /me`, async () => {
        // A new key may answer 503 while the provider does not accept it yet: retry that, never a 401.
        const until = Date.now() + 40_000;
        for (;;) {
          const r = await call('/me', p.headers);
          if (r.status === 503 && Date.now() < until) {
            await sleep(1000, o.signal);
            continue;
          }
          expectStatus('GET /me', r.status, 200, r.body);
          if (r.body.tenantId !== tenantId) throw new CheckFailed(`answered for tenant ${String(r.body.tenantId)}, not the throwaway tenant`);
          return `authMethod=${String(r.body.authMethod)}`;
        }
      });
    }

    await check('no credentials → 401 + WWW-Authenticate Bearer, Basic', async () => {
      const r = await call('/me', {});
      expectStatus('GET /me without credentials', r.status, 401, r.body);
      const challenge = r.headers.get('www-authenticate');
      if (!challenge) throw new CheckFailed('401 without WWW-Authenticate (is the UNAUTHORIZED gateway response deployed?)');
      if (!/\bBearer\b/i.test(challenge) || !/\bBasic\b/i.test(challenge)) throw new CheckFailed(`WWW-Authenticate does not name Bearer and Basic: ${challenge}`);
      return 'Bearer, Basic';
    });
    await check('malformed key → 401', async () => {
      const r = await call('/me', { 'X-Api-Key': 'lk_not-a-real-key' });
      expectStatus('GET /me with a malformed key', r.status, 401, r.body);
      return '';
    });
    await check('unknown route → 404', async () => {
      const r = await call(`/smoke-no-such-route-${randomBytes(3).toString('hex')}`, pathsA[0]!.headers);
      expectStatus('an unknown route', r.status, 404, r.body);
      return '';
    });

    if (o.origin) {
      const origin = o.origin;
      const allowsOrigin = (h: Headers, what: string) => {
        const acao = h.get('access-control-allow-origin');
        if (acao !== origin) throw new CheckFailed(`${what}: Access-Control-Allow-Origin is ${acao === null ? 'missing' : `"${acao}"`}, expected ${origin}`);
      };
      await check('CORS preflight', async () => {
        const r = await call('/me', { Origin: origin, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization,x-api-key' }, 'OPTIONS');
        if (r.status < 200 || r.status > 299) throw new CheckFailed(`preflight answered ${r.status}`);
        allowsOrigin(r.headers, 'preflight');
        if (!listHas(r.headers.get('access-control-allow-methods'), 'GET')) throw new CheckFailed('preflight does not allow GET');
        for (const h of ['Authorization', 'X-Api-Key']) if (!listHas(r.headers.get('access-control-allow-headers'), h)) throw new CheckFailed(`preflight does not allow the ${h} header`);
        return `${r.status}, max-age ${r.headers.get('access-control-max-age') ?? '-'}`;
      });
      await check('CORS on an answer (200)', async () => {
        const r = await call('/me', { Origin: origin, ...pathsA[0]!.headers });
        expectStatus('GET /me', r.status, 200, r.body);
        allowsOrigin(r.headers, '200');
        return '';
      });
      await check('CORS on an error (401)', async () => {
        const r = await call('/me', { Origin: origin });
        expectStatus('GET /me without credentials', r.status, 401, r.body);
        allowsOrigin(r.headers, '401');
        if (!listHas(r.headers.get('access-control-expose-headers'), 'WWW-Authenticate')) throw new CheckFailed('401 does not expose WWW-Authenticate');
        return '';
      });
    } else {
      record('CORS', 'skip', 'no --origin given');
    }

    /** Polls every path until it answers `refused`; records seconds from `since` per path. */
    const untilRefused = async (label: string, paths: CredentialPath[], since: number, refused: (s: number, body: Record<string, unknown>) => boolean, into: Record<string, number | undefined>) => {
      const deadlineMs = since + (boundS + slackS) * 1000;
      await Promise.all(
        paths.map(async (p) => {
          const name = `${label}: ${p.name} refused`;
          let last = '';
          for (;;) {
            o.signal?.throwIfAborted();
            let r: Awaited<ReturnType<typeof call>> | undefined;
            try {
              r = await call('/me', p.headers);
            } catch (err) {
              if (o.signal?.aborted) throw err;
              last = describe(err);
            }
            const now = performance.now();
            if (r && refused(r.status, r.body)) {
              const s = (now - since) / 1000;
              into[p.name] = s;
              record(name, s <= boundS + slackS ? 'pass' : 'FAIL', `${s.toFixed(1)} s (bound ${boundS} s)`);
              return;
            }
            if (r) last = `${r.status}${typeof r.body.type === 'string' ? ` ${r.body.type.replace(PROBLEM_BASE, '')}` : ''}`;
            // 200 until the change arrives; anything else (503, a wrong refusal) is watched until the deadline.
            if (now > deadlineMs) {
              into[p.name] = undefined;
              record(name, 'FAIL', `still ${last} after ${((now - since) / 1000).toFixed(1)} s (bound ${boundS} s)`);
              return;
            }
            await sleep(pollMs, o.signal);
          }
        }),
      );
    };

    // Revocation: one key, every path, until 401.
    let since = performance.now();
    const revokedOk = await check('revoke key 1', async () => {
      since = performance.now();
      await ops!.DELETE('/tenants/{tenantId}/api-keys/{keyId}', { params: { path: { tenantId, keyId: keyA.keyId } } });
      keys[0]!.revoked = true;
      return '';
    });
    if (revokedOk) await untilRefused('revoked key', pathsA, since, (s) => s === 401, report.revocationS);

    // The tenant disabled: the other key, every path (each used once first, so caches are warm), until 403 tenant-disabled.
    await check('key 2 → 200 /me on every path', async () => {
      for (const p of pathsB) {
        const r = await call('/me', p.headers);
        expectStatus(`${p.name}: GET /me`, r.status, 200, r.body);
      }
      return `${pathsB.length} paths`;
    });
    // The tenant disabled: the other key, every path, until 403 tenant-disabled.
    const disabledOk = await check('disable the tenant', async () => {
      since = performance.now();
      await data(ops!.PATCH('/tenants/{tenantId}', { params: { path: { tenantId } }, body: { status: 'disabled' } }));
      return '';
    });
    if (disabledOk) await untilRefused('tenant disabled', pathsB, since, (s, b) => s === 403 && b.type === `${PROBLEM_BASE}tenant-disabled`, report.disableS);
  } catch (err) {
    if (o.signal?.aborted) record('run', 'FAIL', 'interrupted');
    else if (!(err instanceof CheckFailed)) record('run', 'FAIL', describe(err));
  } finally {
    // Clean-up, without the run's signal: an interrupted run still removes what it made.
    if (ops) {
      const cleanup = ops;
      for (const k of keys.filter((x) => !x.revoked)) {
        await cleanupStep(`clean-up: revoke ${k.keyId}`, async () => {
          await cleanup.DELETE('/tenants/{tenantId}/api-keys/{keyId}', { params: { path: { tenantId, keyId: k.keyId } } });
          k.revoked = true;
        });
      }
      // Deleting the tenant also revokes every key it has, those whose issue answer was lost included.
      if (tenantAttempted) {
        await cleanupStep('clean-up: delete the tenant', async () => {
          try {
            await cleanup.DELETE('/tenants/{tenantId}', { params: { path: { tenantId } } });
          } catch (err) {
            if (tenantCreated || !(err instanceof LatchkeyProblem && err.status === 404)) throw err;
          }
        });
      }
    }
  }
  report.ok = results.every((r) => r.result !== 'FAIL');
  return report;

  async function cleanupStep(name: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
      record(name, 'pass', '');
    } catch (err) {
      record(name, 'FAIL', describe(err));
    }
  }
}

/** The report as a plain table: check, result, figure. */
export function formatTable(results: readonly CheckResult[]): string {
  const rows = [['check', 'result', 'figure'], ...results.map((r) => [r.check, r.result, r.figure])];
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]}`.trimEnd();
  return [line(rows[0]!), line(widths.map((w) => '-'.repeat(w)).concat('------')), ...rows.slice(1).map(line)].join('\n');
}
