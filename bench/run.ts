/**
 * `npm run bench`: speed and memory of the authorizer as ratios against baselines measured in
 * the same run. See bench/README.md. Starts (and always stops) DynamoDB Local, the local
 * identity provider and a JWKS server; writes bench/results/latest.json.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDynamoDbLocal, type DynamoDbLocal } from '../infra/local/dynamodb-local.js';
import { apiKeyFixture, faultCases, l1Cases, l2Cases, missCases, stampede, warmDynamo, type CallCounts, type StampedeRun } from './cases/api-key.js';
import { bearerCases, bearerFixture, mixSequence, runMix, type BearerFixture } from './cases/bearer.js';
import { buildBundle, coldStarts, running, writeRunners, type BundleInfo, type ColdVariant } from './cases/cold-start.js';
import { basicEvent, bearerEvent, managementEvent } from './lib/events.js';
import { ratioText, table, yesNo, type Cell } from './lib/report.js';
import { startIdentityProviderProcess, type BenchIdp } from './lib/idp-process.js';
import { interleaved, summarize, type Summary } from './lib/stats.js';
import { startTlsFront, throwawayCertificate, type TlsFront } from './lib/tls.js';
import { LOCAL_AWS_ENV, useLocalAwsEnv } from './lib/local-aws-env.js';
import { signToken, startJwksServer, ROLES_CLAIM, TENANT_CLAIM, type JwksServer } from './lib/tokens.js';
import { createTokenCacheTable } from '../test/support/tables.js';
import { localAuthorizerEnv } from '../test/support/servers.js';
import { USAGE_FLUSH_DEFAULTS } from '../functions/core/usage-counter.js';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const QUICK = process.env.BENCH_QUICK === '1';
const P = QUICK
  ? { rsPool: 1200, esPool: 600, micro: { warmup: 100, rounds: 4, perRound: 200 }, l2: { warmup: 10, rounds: 3, perRound: 10 }, miss: { warmup: 2, rounds: 2, perRound: 4 }, stampedes: 2, faultDecisions: 12, mix: { requests: 10_000, users: 400, reps: 1 }, coldRuns: 5, ddbWarm: 500 }
  : { rsPool: 3000, esPool: 2000, micro: { warmup: 300, rounds: 20, perRound: 500 }, l2: { warmup: 50, rounds: 10, perRound: 30 }, miss: { warmup: 3, rounds: 6, perRound: 5 }, stampedes: 5, faultDecisions: 40, mix: { requests: 50_000, users: 2000, reps: 3 }, coldRuns: 25, ddbWarm: 4000 };

// Our own environment and every child's: local endpoints, dummy credentials, no SDK notice.
useLocalAwsEnv();

const res: { ddb?: DynamoDbLocal; idp?: BenchIdp; bearer?: BearerFixture; tlsJwks?: JwksServer; ddbTls?: TlsFront; tmp?: string } = {};
let cleaned: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    for (const child of running) child.kill('SIGKILL');
    await res.idp?.stop().catch(() => undefined);
    await res.bearer?.jwks.close().catch(() => undefined);
    await res.tlsJwks?.close().catch(() => undefined);
    await res.ddbTls?.close().catch(() => undefined);
    await res.ddb?.stop().catch(() => undefined);
    if (res.tmp) rmSync(res.tmp, { recursive: true, force: true });
  })();
  return cleaned;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping local servers`);
    void cleanup().finally(() => process.exit(130));
  });
}

const log = (msg: string) => console.log(`· ${msg}`);

interface Row {
  id: string;
  label: string;
  s: Summary;
  baseline?: { id: string; label: string; s: Summary };
  /** Compare means rather than medians (the realistic mix). */
  byMean?: boolean;
  target?: number;
}

const ratioOf = (r: Row) => (r.baseline ? (r.byMean ? r.s.meanUs / r.baseline.s.meanUs : r.s.medianUs / r.baseline.s.medianUs) : null);
const metOf = (r: Row) => (r.target === undefined ? null : (ratioOf(r) ?? Infinity) <= r.target);

function runMemoryChild(): Promise<Record<string, { bound: number; entries: number; heapDeltaBytes: number; bytesPerEntry: number; entriesAfterOverflow?: number }>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(REPO, 'bench/memory-child.ts')], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-2000)));
    child.once('error', reject);
    child.once('close', (code) => {
      running.delete(child);
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as never);
      } catch {
        reject(new Error(`memory child exited ${code}: ${err.trim()}`));
      }
    });
  });
}

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const cpu = cpus();
  const machine = { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, node: process.version, platform: `${process.platform}/${process.arch}`, date: new Date().toISOString(), quick: QUICK };
  console.log(`Latchkey bench — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.date}${QUICK ? ' (BENCH_QUICK)' : ''}`);

  log('starting DynamoDB Local and the local identity provider (in a process of its own)');
  [res.ddb, res.idp] = await Promise.all([startDynamoDbLocal(), startIdentityProviderProcess({ port: 0, apiScopes: ['read:things', 'write:things'] }, (c) => running.add(c))]);
  process.env.AWS_ENDPOINT_URL_DYNAMODB = res.ddb.endpoint;
  const idp = res.idp;
  // The stack's key schema and the principal-state index, as the tests create it.
  const tableName = await createTokenCacheTable('bench-token-cache');
  log(`signing ${P.rsPool} RS256 and ${P.esPool} ES256 tokens`);
  const bearer = (res.bearer = await bearerFixture({ rs: P.rsPool, es: P.esPool }));
  const apiKeys = apiKeyFixture(idp, tableName);

  // --- cases 1, 2, 3 (level 1): one interleaved group, all against the floor ------------------
  log('bearer decisions and API-key level-1 hits (interleaved)');
  const l1 = await l1Cases(apiKeys);
  const jwks0 = bearer.jwks.requests;
  const state0 = bearer.stateFeedCalls();
  const microStart = Date.now();
  const micro = await interleaved([...(await bearerCases(bearer)), ...l1.cases], P.micro);
  const jwksDuringMicro = bearer.jwks.requests - jwks0;
  const stateDuringMicro = bearer.stateFeedCalls() - state0;
  // The snapshot syncs in the background once its copy is half the trusted age old (12.5 s by default); never per decision.
  const stateSyncsAllowed = Math.ceil((Date.now() - microStart) / 12_500) + 1;
  const l1Counts = await l1.counts();
  const S = (id: string) => summarize(micro.get(id)!);

  // Memory is not timing-sensitive: measure it while DynamoDB Local's JIT warms up.
  log('memory per cache entry (child process with --expose-gc) while DynamoDB Local warms up');
  const [memory] = await Promise.all([runMemoryChild(), warmDynamo(tableName, P.ddbWarm)]);

  log('API-key level-2 hits and misses');
  const l2 = await l2Cases(apiKeys);
  const l2Samples = await interleaved(l2.cases, P.l2);
  const l2Counts = await l2.counts();
  const miss = await missCases(apiKeys, P.miss.warmup + P.miss.rounds * P.miss.perRound);
  const missSamples = await interleaved(miss.cases, P.miss);
  await new Promise((r) => setTimeout(r, 200)); // fire-and-forget lease releases
  const missCounts = await miss.counts();

  log(`stampede: 200 concurrent first uses over 4 containers, ${P.stampedes} times`);
  const stampedes: StampedeRun[] = [];
  for (let i = 0; i < P.stampedes; i++) stampedes.push(await stampede(apiKeys, { concurrency: 200, containers: 4 }));

  log(`faults: ${P.faultDecisions} decisions with DynamoDB hung, and with the lease holder killed`);
  const faults = await faultCases(apiKeys, Number(new URL(res.ddb.endpoint).port), P.faultDecisions);

  log(`realistic mix: ${P.mix.requests} requests, ${P.mix.users} users, 2% new tokens, ${P.mix.reps} reps`);
  const { seq, distinct } = mixSequence(bearer, { requests: P.mix.requests, users: P.mix.users, newRate: 0.02 });
  const mix = await runMix(bearer, seq, P.mix.reps, {
    handler: bearer.freshHandler,
    aws: () => bearer.awsJwtVerifyHandler,
    proposal: bearer.freshProtoHandler,
  });
  const mixS = (n: string) => summarize(mix.samples.get(n)!);


  // --- case 5: bundles and cold starts --------------------------------------------------------
  log('bundling with esbuild');
  res.tmp = mkdtempSync(join(tmpdir(), 'latchkey-bench-'));
  const entries = { authorizer: 'functions/authorizer/handler.ts', tenants: 'functions/tenants/handler.ts', users: 'functions/users/handler.ts' };
  const bundles: BundleInfo[] = [];
  for (const [name, entry] of Object.entries(entries)) {
    for (const variant of ['single', 'split'] as const) bundles.push(await buildBundle(name, entry, variant, res.tmp, REPO));
  }
  const empty = await buildBundle('empty', { contents: 'export const handler = async () => ({});' }, 'single', res.tmp, REPO);
  bundles.push(empty);
  // The peer: a minimal REST authorizer on aws-jwt-verify, bundled like ours (it has no dynamic imports, so one file).
  const peer = await buildBundle(
    'aws-jwt-verify authorizer',
    {
      contents: `import { JwtVerifier } from 'aws-jwt-verify';
import { awsJwtVerifyAuthorizer } from './bench/peers/aws-jwt-verify-authorizer.js';
const verifier = JwtVerifier.create({ issuer: process.env.ISSUER, audience: process.env.AUDIENCE.split(','), jwksUri: process.env.JWKS_URI });
export const handler = awsJwtVerifyAuthorizer(verifier, { tenantClaim: ${JSON.stringify(TENANT_CLAIM)}, rolesClaim: ${JSON.stringify(ROLES_CLAIM)} });`,
    },
    'single',
    res.tmp,
    REPO,
  );
  bundles.push(peer);
  // The floor of any authorizer on jose: fetch the key set over TLS and jose.jwtVerify the token,
  // nothing else (no rules, no state, no logs). What the cold-start target leaves for the rest.
  const joseFloor = await buildBundle(
    'jose floor',
    {
      contents: `import { get } from 'node:https';
import { createLocalJWKSet, jwtVerify } from 'jose';
const keys = new Promise((resolve, reject) => get(process.env.JWKS_URI, (res) => { let body = ''; res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve(createLocalJWKSet(JSON.parse(body)))); }).on('error', reject));
export const handler = async (event) => {
  const { payload } = await jwtVerify(event.headers.Authorization.slice(7), await keys, { issuer: process.env.ISSUER, audience: process.env.AUDIENCE });
  return { principalId: payload.sub, policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }] } };
};`,
    },
    'single',
    res.tmp,
    REPO,
  );
  bundles.push(joseFloor);
  // What the pieces of the JWT path cost to load on their own (same build, same runner).
  const components: Record<string, string> = {
    'component: Powertools Logger (import + new)': "import { Logger } from '@aws-lambda-powertools/logger'; const l = new Logger({ serviceName: 'x' }); export const handler = async () => ({ l });",
    'component: jose (jwtVerify, importJWK)': "import { importJWK, jwtVerify } from 'jose'; export const handler = async () => ({ importJWK, jwtVerify });",
    'component: Latchkey JWT core (incl. jose)': "import { Authenticator } from './functions/core/authenticate.js'; import { JwtVerifier } from './functions/core/jwt-verifier.js'; export const handler = async () => ({ Authenticator, JwtVerifier });",
  };
  for (const [name, contents] of Object.entries(components)) bundles.push(await buildBundle(name, { contents }, 'single', res.tmp, REPO));
  const bundle = (name: string, variant: 'single' | 'split') => bundles.find((b) => b.name === name && b.variant === variant)!;

  const { runner, probe } = writeRunners(res.tmp);
  // aws-jwt-verify fetches over https only: both authorizers get the key set over TLS from
  // 127.0.0.1, with a certificate made now that every child (the empty baseline too) trusts.
  const cert = throwawayCertificate(res.tmp);
  const tlsJwks = (res.tlsJwks = await startJwksServer([bearer.rsa.publicJwk, bearer.ec.publicJwk], cert));
  // Deployed, every DynamoDB call is https: the children reach DynamoDB Local through a TLS front.
  const ddbTls = (res.ddbTls = await startTlsFront(Number(new URL(res.ddb.endpoint).port), cert));
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...LOCAL_AWS_ENV,
    AWS_ENDPOINT_URL_DYNAMODB: ddbTls.url,
    NODE_EXTRA_CA_CERTS: cert.certFile,
  };
  const coldToken = signToken(bearer.rsa, { sub: 'auth0|cold' }, 3600);
  const jwtEnv = { ...baseEnv, ISSUER: 'https://issuer.bench/', AUDIENCE: 'https://api.bench', JWKS_URI: tlsJwks.uri, BENCH_EVENT: JSON.stringify(bearerEvent(coldToken)) };
  const [seeded] = await apiKeys.newKeys(1);
  await apiKeys.container().handler(basicEvent(seeded!.clientId, seeded!.clientSecret)); // now in level 2
  const apiEnvBase = { ...baseEnv, ...localAuthorizerEnv(idp, tableName) };
  const apiEnv = { ...apiEnvBase, BENCH_EVENT: JSON.stringify(basicEvent(seeded!.clientId, seeded!.clientSecret)) };
  const freshKeys = await apiKeys.newKeys(P.coldRuns + 1);
  // The management functions as the stack configures them; each answers a request that needs no
  // table and no identity provider, so what is timed is loading the bundle and one pass through middy.
  const mgmtEnv = { ...baseEnv, TENANTS_TABLE: 'bench-tenants', TOKEN_CACHE_TABLE: tableName, IDEMPOTENCY_TABLE: 'bench-idempotency', AUDIENCE: 'https://api.bench', IDP: 'auth0', AUTH0_SECRET_ID: 'bench/auth0' };
  const operator = { tenantId: '', userId: 'auth0|ops', clientId: 'spa', roles: 'platform:admin', scopes: 'tenants:admin', authMethod: 'jwt' };
  const tenantsEnv = { ...mgmtEnv, BENCH_EVENT: JSON.stringify(managementEvent('POST', '/tenants', operator, {})) };
  const usersEnv = { ...mgmtEnv, BENCH_EVENT: JSON.stringify(managementEvent('GET', '/me', operator)) };
  const SM = '--enable-source-maps';
  const authS = bundle('authorizer', 'split').entryFile;
  // "deployed" is what the stack ships: every function split into chunks (the authorizer's
  // API-key path and SDK, the management functions' Auth0 SDK and idempotency loaded lazily);
  // the authorizer without runtime source maps, the management functions with them.
  const variants: ColdVariant[] = [
    { name: 'empty', args: [runner, empty.entryFile], env: baseEnv, expect: 'empty' },
    { name: 'empty +sourcemaps', args: [SM, runner, empty.entryFile], env: baseEnv, expect: 'empty' },
    // As deployed, the authorizer reads this container's principal state (one DynamoDB Query, here
    // DynamoDB Local over plain HTTP) beside the key set before its first decision; the peer checks no state.
    { name: 'jwt: deployed (split, no sourcemaps)', args: [runner, authS], env: { ...jwtEnv, TOKEN_CACHE_TABLE: tableName }, expect: 'Allow' },
    { name: 'jwt: without a state table (no revocation check)', args: [runner, authS], env: jwtEnv, expect: 'Allow' },
    { name: 'jwt: aws-jwt-verify authorizer (peer)', args: [runner, peer.entryFile], env: jwtEnv, expect: 'Allow' },
    { name: 'jwt: floor (one TLS fetch + jose.jwtVerify, nothing else)', args: [runner, joseFloor.entryFile], env: jwtEnv, expect: 'Allow' },
    { name: 'apikey L2 hit: deployed (split)', args: [runner, authS], env: apiEnv, expect: 'Allow' },
    {
      name: 'apikey miss: deployed (split)',
      args: [runner, authS],
      env: apiEnvBase,
      expect: 'Allow',
      perRun: (r) => ({ BENCH_EVENT: JSON.stringify(basicEvent(freshKeys[r + 1]!.clientId, freshKeys[r + 1]!.clientSecret)) }),
    },
    { name: 'tenants: deployed (split, +sourcemaps)', args: [SM, runner, bundle('tenants', 'split').entryFile], env: tenantsEnv, expect: 'HTTP 400' },
    { name: 'users: deployed (split, +sourcemaps)', args: [SM, runner, bundle('users', 'split').entryFile], env: usersEnv, expect: 'HTTP 200' },
    ...Object.keys(components).map((name): ColdVariant => ({ name, args: [runner, bundle(name, 'single').entryFile], env: baseEnv, expect: 'other' })),
    { name: 'node: first fetch()', args: [probe, 'fetch'], env: { ...baseEnv, BENCH_URL: bearer.jwks.uri }, expect: 'probe' },
    { name: 'node: first http.request', args: [probe, 'http'], env: { ...baseEnv, BENCH_URL: bearer.jwks.uri }, expect: 'probe' },
  ];
  log(`cold starts: ${variants.length} variants × ${P.coldRuns} fresh processes`);
  const cold = await coldStarts(variants, P.coldRuns);
  const C = (name: string) => cold.find((c) => c.name === name)!;

  // --- report ----------------------------------------------------------------------------------
  const floorRs = { id: 'floor.rs256', label: 'crypto.verify RS256', s: S('floor.rs256') };
  const floorEs = { id: 'floor.es256', label: 'crypto.verify ES256', s: S('floor.es256') };
  const awsRow = { id: 'awsJwtVerify.rs256', label: 'aws-jwt-verify authorizer', s: S('awsJwtVerify.rs256') };
  const rows: Row[] = [
    { id: 'floor.rs256', label: '[floor] crypto.verify RS256 (sync)', s: floorRs.s },
    { id: 'floor.es256', label: '[floor] crypto.verify ES256 (sync)', s: floorEs.s },
    { id: 'handler.firstSeen.rs256', label: '[1] handler, first-seen RS256', s: S('handler.firstSeen.rs256'), baseline: floorRs },
    { id: 'handler.firstSeen.rs256.vsAws', label: '[1] handler, first-seen RS256', s: S('handler.firstSeen.rs256'), baseline: awsRow },
    // The issue's target: the handler adds at most 25% over jose's own verification of the same token.
    {
      id: 'handler.firstSeen.rs256.vsJose',
      label: '[1] handler, first-seen RS256',
      s: S('handler.firstSeen.rs256'),
      baseline: { id: 'jose.jwtVerify.rs256', label: 'bare jose.jwtVerify', s: S('jose.jwtVerify.rs256') },
      target: 1.25,
    },
    { id: 'awsJwtVerify.rs256', label: '[1b] aws-jwt-verify minimal authorizer', s: awsRow.s, baseline: floorRs },
    { id: 'jose.jwtVerify.rs256', label: '[1c] bare jose.jwtVerify RS256', s: S('jose.jwtVerify.rs256'), baseline: floorRs },
    { id: 'handler.firstSeen.es256', label: '[1] handler, first-seen ES256', s: S('handler.firstSeen.es256'), baseline: floorEs },
    { id: 'handler.cacheHit.rs256', label: '[2] handler, repeated token (cache hit)', s: S('handler.cacheHit.rs256'), baseline: floorRs, target: 0.5 },
    { id: 'apikey.l1.basic', label: '[3] API key L1 hit (Basic)', s: S('apikey.l1.basic'), baseline: floorRs, target: 0.5 },
    { id: 'apikey.l1.lkKey', label: '[3] API key L1 hit (X-Api-Key lk_…)', s: S('apikey.l1.lkKey'), baseline: floorRs, target: 0.5 },
    // Usage counting on the same container's level-1 hit: the ratio to the uncounted case, same run.
    {
      id: 'apikey.l1.basic.counted',
      label: '[3] API key L1 hit (Basic) + usage counting',
      s: S('apikey.l1.basic.counted'),
      baseline: { id: 'apikey.l1.basic', label: 'same, without counting', s: S('apikey.l1.basic') },
    },
    {
      id: 'apikey.l2',
      label: '[3] API key L2 hit (new container, warm client)',
      s: summarize(l2Samples.get('apikey.l2')!),
      baseline: { id: 'dynamodb.getItem', label: 'DynamoDB GetItem', s: summarize(l2Samples.get('dynamodb.getItem')!) },
    },
    {
      id: 'apikey.miss',
      label: '[3] API key miss (exchange at local IdP)',
      s: summarize(missSamples.get('apikey.miss')!),
      baseline: { id: 'tokenEndpoint.post', label: 'bare token POST', s: summarize(missSamples.get('tokenEndpoint.post')!) },
    },
    {
      id: 'mix.handler',
      label: `[7] realistic mix (${((mix.firstSeen / P.mix.requests) * 100).toFixed(1)}% first-seen)`,
      s: mixS('handler'),
      baseline: { id: 'mix.awsJwtVerify', label: 'aws-jwt-verify, same seq (mean)', s: mixS('aws') },
      byMean: true,
      target: 0.5,
    },
    {
      id: 'proposal.syncVerify.firstSeen.rs256',
      label: '[proposal] sync-verify prototype, first-seen RS256',
      s: S('proposal.syncVerify.firstSeen.rs256'),
      baseline: floorRs,
    },
    {
      id: 'proposal.mix',
      label: '[proposal] sync-verify prototype, realistic mix',
      s: mixS('proposal'),
      baseline: { id: 'mix.awsJwtVerify', label: 'aws-jwt-verify, same seq (mean)', s: mixS('aws') },
      byMean: true,
    },
  ];
  console.log(
    table(
      'Decision cost per request (µs; ratio of medians, of means for [7])',
      ['case', 'median µs', 'p99 µs', 'mean µs', 'baseline', 'base µs', 'ratio', 'target', 'met?'],
      rows.map((r): Cell[] => [
        r.label,
        r.s.medianUs,
        r.s.p99Us,
        r.s.meanUs,
        r.baseline?.label,
        r.baseline ? (r.byMean ? r.baseline.s.meanUs : r.baseline.s.medianUs) : null,
        ratioText(ratioOf(r)),
        r.target === undefined ? '—' : `≤ ${r.target}x`,
        yesNo(metOf(r)),
      ]),
    ),
  );

  const perReq = (c: CallCounts) => ({ dynamo: c.dynamoCalls / c.requests, token: c.tokenRequests / c.requests, http: c.httpFetches / c.requests });
  const l1PerReq = perReq(l1Counts);
  const l2PerReq = perReq(l2Counts);
  const missPerReq = perReq(missCounts);
  const stampedeMax = Math.max(...stampedes.map((s) => s.tokenRequests));
  const usage = l1.usage();
  const usageWritesPer10k = (usage.writes * 10_000) / Math.max(1, usage.requests);
  const countRows: { label: string; c: CallCounts | null; target: string; met: boolean | null; note?: string }[] = [
    { label: '[3] API key L1 hit', c: l1Counts, target: '0 network calls', met: l1Counts.dynamoCalls + l1Counts.tokenRequests + l1Counts.httpFetches === 0 },
    {
      label: '[3] API key L1 hit + usage counting',
      c: { requests: usage.requests, dynamoCalls: usage.writes, tokenRequests: 0, httpFetches: 0 },
      target: '≤ 10 DynamoDB writes per 10,000',
      met: usageWritesPer10k <= 10,
      note: `${usageWritesPer10k.toFixed(1)} writes per 10,000 requests (flush every ${USAGE_FLUSH_DEFAULTS.seconds} s or ${USAGE_FLUSH_DEFAULTS.requests} requests)`,
    },
    // Each L2 case is a new container: its first decision also makes the container's first principal-state sync.
    { label: '[3] API key L2 hit (new container: + its first state sync)', c: l2Counts, target: '1 read + 1 sync, 0 exchanges', met: l2PerReq.dynamo === 2 && l2Counts.tokenRequests === 0 },
    { label: '[3] API key miss', c: missCounts, target: '1 exchange', met: missPerReq.token === 1 },
  ];
  console.log(
    table(
      'Network calls per request',
      ['case', 'requests', 'DynamoDB/req', 'token endpoint/req', 'HTTP fetches/req', 'target', 'met?'],
      [
        ...countRows.map((r): Cell[] => [r.label, r.c?.requests, perReq(r.c!).dynamo, perReq(r.c!).token, perReq(r.c!).http, r.target, yesNo(r.met)]),
        ['[1,2] bearer: JWKS fetches in timed loops', null, null, null, jwksDuringMicro, '0', yesNo(jwksDuringMicro === 0)],
        ['[1,2] bearer: principal-state feed reads in timed loops (all first-seen and repeated tokens)', null, stateDuringMicro, null, null, `≤ ${stateSyncsAllowed} (one per 12.5 s)`, yesNo(stateDuringMicro <= stateSyncsAllowed)],
      ],
    ),
  );
  console.log(
    table(
      `Decisions under faults: p99 as a ratio to the decision budget (${apiKeys.config.decisionBudgetMs} ms)`,
      ['fault', 'decisions', 'p50 ms', 'p99 ms', 'max ms', 'p99 / budget', 'outcomes', 'met?'],
      faults.map((r): Cell[] => [r.name, r.decisions, r.p50Ms, r.p99Ms, r.maxMs, r.p99OfBudget, Object.entries(r.outcomes).map(([k, v]) => `${k} ${v}`).join(', '), yesNo(r.p99OfBudget <= 1 && !r.outcomes.unauthorized)]),
    ),
  );
  console.log(
    table(
      '[4] Stampede: 200 concurrent first uses of one key over 4 containers',
      ['run', 'token endpoint calls', 'DynamoDB calls', 'allowed', 'wall ms', 'target', 'met?'],
      [
        ...stampedes.map((s, i): Cell[] => [`#${i + 1}`, s.tokenRequests, s.dynamoCalls, `${s.allowed}/200`, s.wallMs, '≤ 2', yesNo(s.tokenRequests <= 2 && s.allowed === 200)]),
        ['max', stampedeMax, Math.max(...stampedes.map((s) => s.dynamoCalls)), null, Math.max(...stampedes.map((s) => s.wallMs)), '≤ 2', yesNo(stampedeMax <= 2 && stampedes.every((s) => s.allowed === 200))],
      ],
    ),
  );

  console.log(
    table(
      '[5] Bundles (esbuild: node22, esm, minify, the require banner; single = as NodejsFunction, split = as the stack deploys: esm+splitting, static chunks merged into the entry)',
      ['bundle', 'files', 'entry B', 'entry gz B', 'total B', 'total gz B', 'source map B'],
      bundles.map((b): Cell[] => [`${b.name} (${b.variant})`, b.files, b.entryBytes, b.entryGzipBytes, b.totalBytes, b.totalGzipBytes, b.sourceMapBytes || null]),
    ),
  );
  for (const b of [bundle('authorizer', 'split'), bundle('authorizer', 'single')]) {
    console.log(`  ${b.name} (${b.variant}) entry file, largest parts: ${b.entryTop.map((t) => `${t.input} ${(t.bytes / 1024).toFixed(0)} KiB`).join(', ')}`);
  }
  const emptyFor = (name: string) => (name.includes('+sourcemaps') ? C('empty +sourcemaps') : C('empty'));
  const peerCold = C('jwt: aws-jwt-verify authorizer (peer)');
  const coldRows = cold.map((c) => {
    const base = c.name.startsWith('node:') ? null : emptyFor(c.name);
    const delta = base && base !== c ? c.medianMs - base.medianMs : null;
    // The JWT path is judged against the aws-jwt-verify authorizer in the same runs: min (the
    // target) and median. Both fetch the key set over TLS, so the Δ over an empty handler is
    // not comparable with runs that served it over plain HTTP.
    const vsPeer = c.name.startsWith('jwt:') ? { min: c.minMs / peerCold.minMs, median: c.medianMs / peerCold.medianMs } : null;
    const targetVsPeerMin = c.name.startsWith('jwt: deployed') ? 1 : null;
    return { ...c, emptyBaseline: base && base !== c ? base.name : null, deltaMs: delta, vsPeer, targetVsPeerMin, met: targetVsPeerMin === null ? null : vsPeer!.min <= targetVsPeerMin };
  });
  console.log(
    table(
      `[5] Cold start, fresh node process each (${P.coldRuns} interleaved runs; ms; "import+answer" measured in the child; cpu = the child's user+system time over the same span)`,
      ['variant', 'min', 'median', 'p90', 'import', 'first call', 'cpu', 'since proc start', 'Δ vs empty', 'vs peer min / median', 'target', 'met?'],
      coldRows.map((c): Cell[] => [
        c.name,
        c.minMs,
        c.medianMs,
        c.p90Ms,
        c.medianImportMs,
        c.medianFirstCallMs,
        c.medianCpuMs,
        c.medianSinceProcessStartMs,
        c.deltaMs,
        c.vsPeer ? `${ratioText(c.vsPeer.min)} / ${ratioText(c.vsPeer.median)}` : null,
        c.targetVsPeerMin === null ? '—' : `≤ ${c.targetVsPeerMin}x peer min`,
        yesNo(c.met),
      ]),
    ),
  );

  const memRows = Object.entries(memory).map(([name, m]) => ({ name, ...m, mbAtBound: (m.bytesPerEntry * m.bound) / 1024 / 1024 }));
  console.log(
    table(
      '[6] Memory at the configured bound (heapUsed delta after gc / entries)',
      ['cache', 'bound', 'entries', 'bytes/entry', 'MiB at bound'],
      memRows.map((m): Cell[] => [m.name, m.bound, m.entries, m.bytesPerEntry, m.mbAtBound]),
    ),
  );

  const runtimeS = Number(process.hrtime.bigint() - started) / 1e9;
  const targets = [
    ...rows.filter((r) => r.target !== undefined).map((r) => ({ id: r.id, target: `≤ ${r.target}x ${r.baseline?.label}`, value: ratioOf(r), met: metOf(r) })),
    ...countRows.map((r) => ({ id: r.label, target: r.target, value: r.c ? perReq(r.c) : null, met: r.met })),
    { id: 'stampede.tokenRequests.max', target: '≤ 2', value: stampedeMax, met: stampedeMax <= 2 },
    ...faults.map((r) => ({ id: `fault.p99OfBudget:${r.name}`, target: '≤ 1 (within the decision budget), never 401', value: r.p99OfBudget, met: r.p99OfBudget <= 1 && !r.outcomes.unauthorized })),
    ...coldRows
      .filter((c) => c.targetVsPeerMin !== null)
      .map((c) => ({ id: `coldStart:${c.name}`, target: `≤ ${c.targetVsPeerMin}x ${peerCold.name} (min of ${P.coldRuns} interleaved runs)`, value: c.vsPeer!.min, met: c.met })),
  ];
  const json = {
    machine,
    runtimeS,
    parameters: P,
    decisions: rows.map((r) => ({
      id: r.id,
      label: r.label,
      ...r.s,
      baseline: r.baseline ? { id: r.baseline.id, label: r.baseline.label, ...r.baseline.s } : null,
      ratio: ratioOf(r),
      ratioOf: r.byMean ? 'means' : 'medians',
      target: r.target ?? null,
      met: metOf(r),
    })),
    networkCalls: { l1: { ...l1Counts, perRequest: l1PerReq, revalidations: l1.revalidations() }, l2: { ...l2Counts, perRequest: l2PerReq }, miss: { ...missCounts, perRequest: missPerReq }, jwksFetchesDuringBearerLoops: jwksDuringMicro, stateFeedReadsDuringBearerLoops: stateDuringMicro, stateFeedReadsAllowed: stateSyncsAllowed },
    stampede: { runs: stampedes, maxTokenRequests: stampedeMax },
    faults,
    mix: { requests: P.mix.requests, users: P.mix.users, newTokenRate: 0.02, distinctTokens: distinct, firstSeenPerRep: mix.firstSeen, reps: P.mix.reps },
    bundles: bundles.map(({ dir: _dir, entryFile: _entryFile, ...b }) => b),
    coldStart: coldRows,
    memory: memRows,
    targets,
  };
  mkdirSync(join(REPO, 'bench/results'), { recursive: true });
  writeFileSync(join(REPO, 'bench/results/latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  const met = targets.filter((t) => t.met === true).length;
  console.log(`\nTargets met: ${met}/${targets.length}. Runtime ${runtimeS.toFixed(1)} s. Results: bench/results/latest.json`);
}

try {
  await main();
} catch (err) {
  console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
