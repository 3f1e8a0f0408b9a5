/**
 * `npm run bench:scale`: what Latchkey costs per million requests, how that grows from 10 to
 * 10,000 tenants and from 10 to 10,000 requests/s, and the first limit each workload reaches.
 *
 *   npm run bench:scale                                   # the default workload (5–10 minutes on 2 shared cores)
 *   npm run bench:scale -- --tenants 50 --rps 20 --keysPerTenant 5 --tokenLifetimeS 86400
 *   SCALE_QUICK=1 npm run bench:scale                     # short simulated spans, to check the harness
 *
 * Any field of `Workload` (workload.ts) can be given as `--name value`. Writes
 * bench/results/scale.json, scale.md (the tables) and scale.svg (the plot).
 */
import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../infra/local/dynamodb-local.js';
import { startLocalIdentityProvider, type LocalIdentityProvider } from '../../infra/local/identity-provider.js';
import { costs, derivedRates, DURATION, limitsReached, measuredRates, unitsFrom, type Cost, type Rates, type Units } from './model.js';
import { LIMITS, PRICES } from './prices.js';
import { createScaleTable, simulate, type SimResult } from './simulate.js';
import { lineChart, type Series } from './svg.js';
import { DEFAULT_WORKLOAD, type Workload } from './workload.js';
import { useLocalAwsEnv } from '../lib/local-aws-env.js';

useLocalAwsEnv();

const QUICK = process.env.SCALE_QUICK === '1';
const OUT = fileURLToPath(new URL('../results/', import.meta.url));
const AXIS = [10, 100, 1000, 10_000];
const log = (m: string) => console.error(`[scale] ${m}`);

function parseArgs(argv: string[]): Partial<Workload> {
  const out: Record<string, number> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [name, inline] = a.slice(2).split('=');
    const key = name === 'rps' ? 'requestsPerS' : name!;
    if (!(key in DEFAULT_WORKLOAD)) throw new Error(`unknown workload field --${name}; fields: ${Object.keys(DEFAULT_WORKLOAD).join(', ')}`);
    const v = Number(inline ?? argv[++i]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number`);
    out[key] = v;
  }
  return out as Partial<Workload>;
}

/** Containers and churn for a request rate: at least the base workload's, one more per 50 requests/s. */
function scaled(base: Workload, tenants: number, rps: number): Workload {
  const containers = Math.max(base.containers, Math.ceil(rps / 50));
  return { ...base, tenants, requestsPerS: rps, containers, coldStartsPerHour: (base.coldStartsPerHour / base.containers) * containers };
}

const same = (a: Workload, b: Workload) => (Object.keys(a) as (keyof Workload)[]).every((k) => k === 'durationS' || a[k] === b[k]);
const money = (v: number) => (v >= 10 ? `$${v.toFixed(1)}` : v >= 0.01 ? `$${v.toFixed(2)}` : `$${v.toPrecision(2)}`);
const num = (v: number) => (v === 0 ? '0' : v >= 100 ? Math.round(v).toLocaleString('en-US') : v >= 1 ? v.toFixed(1) : v.toPrecision(2));
const mdTable = (head: string[], rows: string[][]) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

interface Point {
  workload: Workload;
  rates: Rates;
  measured: boolean;
  costs: Cost[];
}

async function main(): Promise<void> {
  const base: Workload = { ...DEFAULT_WORKLOAD, durationS: 7080, ...parseArgs(process.argv.slice(2)) };
  const cpu = cpus();
  const machine = { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, node: process.version, date: new Date().toISOString(), quick: QUICK };
  log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}${QUICK ? ' (SCALE_QUICK)' : ''}`);

  let ddb: DynamoDbLocal | undefined;
  let idp: LocalIdentityProvider | undefined;
  const stop = async () => {
    await idp?.stop();
    await ddb?.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    ddb = await startDynamoDbLocal();
    process.env.AWS_ENDPOINT_URL_DYNAMODB = ddb.endpoint;
    // Tokens the provider issues live `tokenLifetimeS` of simulated time (the exchange counts `expires_in` on the injected clock).
    idp = await startLocalIdentityProvider({ port: 0, accessTokenTtlS: base.tokenLifetimeS, apiScopes: ['users:read'] });
    const env = { idp, newTable: createScaleTable };

    // Measured: the base workload and ten times its tenants. Counting starts half a refresh interval
    // in (after the caches' first fill) and lasts whole refresh intervals, so each key's exchanges
    // are counted once per interval, not cut at an arbitrary point of the cycle.
    const div = QUICK ? 6 : 1;
    const rI = Math.max(base.tokenLifetimeS / 2, base.tokenLifetimeS - 60);
    const warmupS = Math.round(rI / 2 / div);
    const plans: Workload[] = [
      { ...base, durationS: warmupS + Math.round((base.durationS > 0 ? Math.max(1, Math.round(base.durationS / rI)) : 2) * rI / div) },
      { ...scaled(base, base.tenants * 10, base.requestsPerS), durationS: warmupS + Math.round(rI / div) },
    ];
    const runs: SimResult[] = [];
    for (const w of plans) {
      log(`simulating ${w.tenants} tenants × ${w.keysPerTenant} keys, ${w.requestsPerS} req/s, ${w.containers} containers, ${w.durationS} s simulated (${warmupS} s warm-up)`);
      const r = await simulate(env, w, { stepMs: 1000, warmupS, progress: (d) => log(`  ${(d * 100).toFixed(0)} %`) });
      log(`  ${r.requests} requests counted, ${(r.wallMs / 1000).toFixed(1)} s wall (${(r.workload.durationS / (r.wallMs / 1000)).toFixed(0)}× real time); ${r.refused} refused`);
      if (r.refused > 0) throw new Error(`${r.refused} requests were refused: the simulation is not serving its own workload`);
      runs.push(r);
    }
    const units: Units = unitsFrom(runs[0]!);

    const pointFor = (w: Workload): Point => {
      const run = runs.find((r) => same(r.workload, w));
      const rates = run ? measuredRates(run) : derivedRates(w, units);
      return { workload: w, rates, measured: run !== undefined, costs: costs(w, rates, units.cpuUs) };
    };
    const grid: Point[] = [];
    for (const t of AXIS) for (const rps of AXIS) grid.push(pointFor(scaled(base, t, rps)));
    const measuredPoints = runs.map((r) => pointFor(r.workload));

    // The rates against the real code, where both exist.
    const check = runs.map((r) => {
      const m = measuredRates(r);
      const d = derivedRates(r.workload, units);
      return { workload: r.workload, measured: m, derived: d };
    });

    // First limits along each axis (fine log steps), for Latchkey and for JWT-only set-ups.
    const steps = Array.from({ length: 31 }, (_, i) => Math.round(10 ** (1 + i / 10)));
    const firstLimits = (['latchkey', 'jwt-only'] as const).flatMap((who) =>
      (['tenants', 'rps', 'both'] as const).map((axis) => {
        const seen = new Map<string, number>();
        for (const v of steps) {
          const w = axis === 'tenants' ? scaled(base, v, base.requestsPerS) : axis === 'rps' ? scaled(base, base.tenants, v) : scaled(base, v, v);
          const p = pointFor(w);
          for (const hit of limitsReached(w, p.rates, units.cpuUs, who)) if (!seen.has(hit.limit)) seen.set(hit.limit, v);
        }
        return { who, axis, hits: [...seen.entries()].map(([limit, at]) => ({ limit, at })) };
      }),
    );

    const report = render(base, runs, measuredPoints, grid, check, firstLimits, units);
    console.log(report.md);
    mkdirSync(OUT, { recursive: true });
    writeFileSync(`${OUT}scale.md`, report.md + '\n');
    writeFileSync(`${OUT}scale.svg`, report.svg + '\n');
    writeFileSync(`${OUT}scale.json`, JSON.stringify({ machine, prices: PRICES, limits: LIMITS, duration: DURATION, base, runs, units, grid, check, firstLimits }, null, 1) + '\n');
    log(`wrote ${OUT}scale.md, scale.svg, scale.json`);
  } finally {
    await stop();
  }
}

function render(
  base: Workload,
  runs: SimResult[],
  measured: Point[],
  grid: Point[],
  check: { workload: Workload; measured: Rates; derived: Rates }[],
  firstLimits: { who: string; axis: string; hits: { limit: string; at: number }[] }[],
  units: Units,
) {
  const md: string[] = [];
  const wl = (w: Workload) => `${w.tenants} tenants × ${w.keysPerTenant} keys, ${w.tenants * w.usersPerTenant} users, ${w.requestsPerS} req/s, ${w.containers} containers`;
  md.push(
    `Prices: ${PRICES.region} list prices as of ${PRICES.takenOn} (bench/scale/prices.ts; to be checked). Base workload: ${wl(base)}, ${base.apiKeyShare * 100} % API-key traffic, tokens ${base.tokenLifetimeS} s (users ${base.userTokenLifetimeS} s), ${base.coldStartsPerHour} cold starts/h, ${base.stateChangesPerHour} state changes/h, ${base.memoryMb} MB arm64.`,
  );
  md.push('\n**Per million requests, measured workloads** (simulated with the real authorizer code; the compressed clock stepped by 1 s):\n');
  const rows: string[][] = [];
  for (const p of measured) {
    for (const c of p.costs) {
      rows.push([wl(p.workload), c.label, num(c.tokenExchanges), num(c.rru), num(c.wru), num(c.invocations), num(c.gbSeconds), money(c.dollars.gateway), money(c.dollars.lambda), money(c.dollars.dynamo), `**${money(c.dollars.total)}**`]);
    }
  }
  md.push(mdTable(['workload', 'set-up', 'token-endpoint calls', 'DynamoDB RRU', 'DynamoDB WRU', 'Lambda invocations', 'GB-s (est.)', 'gateway $', 'Lambda $', 'DynamoDB $', 'total $'], rows));
  md.push('\nNotes: ' + [...new Set(measured[0]!.costs.map((c) => `*${c.label}*: ${c.note}`))].join('; ') + '.');
  md.push(
    `GB-s are an estimate: CPU per decision kind measured in this process (µs, mean: ${Object.entries(units.cpuUs)
      .map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(', ')}; includes the harness and, for exchanges, the in-process identity provider), scaled by ${DURATION.fullVcpuMb} MB / memory, plus ${DURATION.dynamoMs} ms per DynamoDB call and ${DURATION.tokenEndpointMs} ms per token-endpoint call on the decision's path, rounded up to whole ms per invocation.`,
  );

  md.push('\n**Growth** — Latchkey (REST, cache off), per million requests; **bold** = measured, plain = derived from the measured rates (containers: max(4, rps/50), one cold start per container per hour):\n');
  const g: string[][] = [];
  for (const p of grid) {
    const c = p.costs[0]!;
    const b = (s: string) => (p.measured ? `**${s}**` : s);
    g.push([String(p.workload.tenants), String(p.workload.requestsPerS), String(p.workload.containers), b(num(c.tokenExchanges)), b(num(c.rru)), b(num(c.wru)), b(num(c.gbSeconds)), b(money(c.dollars.total)), money(p.costs[1]!.dollars.total), money(p.costs[2]!.dollars.total), money(p.costs[4]!.dollars.total)]);
  }
  md.push(mdTable(['tenants', 'req/s', 'containers', 'token-endpoint calls', 'RRU', 'WRU', 'GB-s', 'Latchkey $', 'Latchkey, cache 300 s $', 'aws-jwt-verify $', 'HTTP API JWT $'], g));

  md.push('\n**First limits reached**, with the figure at which each is reached (tenants grow at the base request rate; the request rate grows at the base tenant count; or both together):\n');
  const lim: string[][] = [];
  for (const f of firstLimits) {
    const first = f.hits.slice(0, 5).map((h) => `${h.limit} at ${h.at.toLocaleString('en-US')}`);
    lim.push([f.who === 'latchkey' ? 'Latchkey' : 'JWT only (aws-jwt-verify / HTTP API)', f.axis === 'tenants' ? `tenants (at ${base.requestsPerS} req/s)` : f.axis === 'rps' ? `req/s (at ${base.tenants} tenants)` : 'tenants = req/s, together', first.join('; ') || 'none up to 10,000']);
  }
  md.push(mdTable(['set-up', 'growing', 'limits in the order reached (first 5)'], lim));

  md.push('\n**Model check** — per hour, measured by the simulation vs the same workload derived from rates:\n');
  const k: string[][] = [];
  for (const c of check) {
    for (const [name, f] of [
      ['token exchanges', (r: Rates) => r.exchanges],
      ['level-2 reads', (r: Rates) => r.l2Reads],
      ['"last used" writes', (r: Rates) => r.useRecords],
      ['feed queries', (r: Rates) => r.feedQueries],
      ['RRU (table + index)', (r: Rates) => r.rru + r.gsiRru],
      ['WRU (table + index)', (r: Rates) => r.wru + r.gsiWru],
    ] as const) {
      k.push([wl(c.workload), name, num(f(c.measured)), num(f(c.derived))]);
    }
  }
  md.push(mdTable(['workload', 'per hour', 'measured', 'derived'], k));
  md.push(
    `\nSimulated: ${runs.map((r) => `${r.requests.toLocaleString('en-US')} requests counted over ${+(r.measuredS / 3600).toFixed(2)} h (after a ${+((r.workload.durationS - r.measuredS) / 60).toFixed(1)} min warm-up), run in ${(r.wallMs / 1000).toFixed(0)} s`).join('; ')}.`,
  );

  const series = (axis: 'tenants' | 'rps', fixed: number): Series[] =>
    [0, 1, 2, 4].map((i) => ({
      label: grid[0]!.costs[i]!.label,
      points: grid
        .filter((p) => (axis === 'tenants' ? p.workload.requestsPerS === fixed : p.workload.tenants === fixed))
        .map((p) => ({ x: axis === 'tenants' ? p.workload.tenants : p.workload.requestsPerS, y: p.costs[i]!.dollars.total, measured: p.measured })),
    }));
  const svg = lineChart(
    [
      { title: `$ per million requests vs tenants (${100} req/s)`, xLabel: 'tenants', yLabel: '$ / million requests', series: series('tenants', 100) },
      { title: `$ per million requests vs req/s (${100} tenants)`, xLabel: 'requests per second', yLabel: '$ / million requests', series: series('rps', 100) },
    ],
    `npm run bench:scale; ${PRICES.region} list prices of ${PRICES.takenOn}; filled dots measured, open dots derived`,
  );
  return { md: md.join('\n'), svg };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
