/**
 * Case 5: bundles built as CDK's NodejsFunction builds them, their sizes, and the time from
 * importing a bundle in a fresh `node` process to its first answer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { buildFunction, bundleOptions, ESM_REQUIRE_BANNER } from '../../infra/bundling.js';
import { median, percentile } from '../lib/stats.js';

const COMMON: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  minify: true,
  mainFields: ['module', 'main'],
  banner: { js: ESM_REQUIRE_BANNER },
  metafile: true,
  logLevel: 'silent',
  outExtension: { '.js': '.mjs' },
};

export interface BundleInfo {
  name: string;
  variant: 'single' | 'split';
  dir: string;
  entryFile: string;
  entryBytes: number;
  entryGzipBytes: number;
  totalBytes: number;
  totalGzipBytes: number;
  files: number;
  sourceMapBytes: number;
  /** Largest contributors to the entry file, by package. */
  entryTop: { input: string; bytes: number }[];
}

function pkgOf(input: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
  if (m) return m[1]!;
  return input.startsWith('functions/') ? `latchkey:${input.split('/')[1]}` : input;
}

/** Largest inputs, by package, of the outputs that make the entry file (with a split build's merged chunks). */
function topInputs(meta: Metafile, parts: string[]): { input: string; bytes: number }[] {
  const outs = Object.entries(meta.outputs).filter(([p]) => parts.some((part) => p.endsWith(part)));
  if (outs.length === 0) return [];
  const byPkg = new Map<string, number>();
  for (const [, out] of outs) for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) byPkg.set(pkgOf(input), (byPkg.get(pkgOf(input)) ?? 0) + bytesInOutput);
  return [...byPkg]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([input, bytes]) => ({ input, bytes }));
}

function measure(name: string, variant: 'single' | 'split', dir: string, meta: Metafile, entryParts = ['index.mjs']): BundleInfo {
  const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile());
  const js = files.filter((f) => f.endsWith('.mjs'));
  const gz = (f: string) => gzipSync(readFileSync(join(dir, f))).length;
  const size = (f: string) => statSync(join(dir, f)).size;
  return {
    name,
    variant,
    dir,
    entryFile: join(dir, 'index.mjs'),
    entryBytes: size('index.mjs'),
    entryGzipBytes: gz('index.mjs'),
    totalBytes: js.reduce((s, f) => s + size(f), 0),
    totalGzipBytes: js.reduce((s, f) => s + gz(f), 0),
    files: js.length,
    sourceMapBytes: files.filter((f) => f.endsWith('.map')).reduce((s, f) => s + size(f), 0),
    entryTop: topInputs(meta, entryParts),
  };
}

/**
 * `single`: what NodejsFunction produces (one file, dynamic imports inlined, linked source map
 * without sources content). `split`: what the stack deploys (`infra/bundling.ts`): esm +
 * splitting, dynamic imports become chunks, the chunks the entry imports statically merged
 * back into it.
 */
export async function buildBundle(name: string, entry: string | { contents: string }, variant: 'single' | 'split', outRoot: string, repoRoot: string): Promise<BundleInfo> {
  const dir = join(outRoot, variant, name.replace(/[^a-z0-9-]+/gi, '_'));
  mkdirSync(dir, { recursive: true });
  if (variant === 'split') {
    // Split as the stack splits, which bundles files: a source given inline has no split build.
    if (typeof entry !== 'string') throw new Error(`${name}: a split bundle is built from an entry file`);
    const { metafile, merged } = buildFunction(bundleOptions(entry, { splitting: true }), dir);
    return measure(name, variant, dir, metafile, ['index.mjs', ...merged]);
  }
  const input: BuildOptions =
    typeof entry === 'string'
      ? { entryPoints: { index: join(repoRoot, entry) }, outdir: dir }
      : { stdin: { contents: entry.contents, loader: 'ts', resolveDir: repoRoot, sourcefile: `${name}.ts` }, outfile: join(dir, 'index.mjs') };
  const result = await build({ ...COMMON, ...input, sourcemap: true, sourcesContent: false, tsconfig: join(repoRoot, 'tsconfig.json') });
  return measure(name, variant, dir, result.metafile!);
}

/** Runs in each fresh process: import the bundle, answer one event, report (synchronously). */
const RUNNER = `import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const c0 = process.cpuUsage();
const t0 = performance.now();
const mod = await import(pathToFileURL(process.argv[2]).href);
const t1 = performance.now();
let outcome;
try {
  const r = await mod.handler(JSON.parse(process.env.BENCH_EVENT ?? '{}'), {});
  outcome = r?.policyDocument?.Statement?.[0]?.Effect ?? (typeof r?.statusCode === 'number' ? 'HTTP ' + r.statusCode : r && Object.keys(r).length === 0 ? 'empty' : 'other');
} catch (e) {
  outcome = 'error: ' + (e?.name ?? '') + ' ' + (e?.message ?? '');
}
const t2 = performance.now();
const c = process.cpuUsage(c0);
writeSync(1, '\\nBENCH_RESULT ' + JSON.stringify({ importMs: t1 - t0, firstCallMs: t2 - t1, totalMs: t2 - t0, cpuMs: (c.user + c.system) / 1000, sinceProcessStartMs: t2, outcome }) + '\\n');
process.exit(0);
`;

/** What Node itself costs for the first outbound request of a process (undici is loaded lazily by fetch). */
const PROBE = `import { writeSync } from 'node:fs';
import { request } from 'node:http';
const mode = process.argv[2];
const url = process.env.BENCH_URL;
const t0 = performance.now();
if (mode === 'fetch') {
  const res = await fetch(url);
  await res.text();
} else {
  await new Promise((resolve, reject) => request(url, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject).end());
}
const t1 = performance.now();
writeSync(1, '\\nBENCH_RESULT ' + JSON.stringify({ totalMs: t1 - t0, outcome: 'probe' }) + '\\n');
process.exit(0);
`;

export function writeRunners(outRoot: string): { runner: string; probe: string } {
  const runner = join(outRoot, 'runner.mjs');
  const probe = join(outRoot, 'probe.mjs');
  writeFileSync(runner, RUNNER);
  writeFileSync(probe, PROBE);
  return { runner, probe };
}

export interface ColdVariant {
  name: string;
  args: string[];
  env: Record<string, string>;
  expect: string;
  /** Per-run environment additions (e.g. a fresh API key each run). */
  perRun?: (run: number) => Record<string, string>;
}

interface ChildResult {
  totalMs: number;
  cpuMs?: number;
  importMs?: number;
  firstCallMs?: number;
  sinceProcessStartMs?: number;
  wallMs: number;
  outcome: string;
}

export const running = new Set<ChildProcess>();

function runChild(v: ColdVariant, run: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(process.execPath, v.args, { env: { ...v.env, ...v.perRun?.(run) }, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-2000)));
    child.once('error', reject);
    child.once('close', (code) => {
      running.delete(child);
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
      if (!line) return reject(new Error(`${v.name}: child exited ${code} without a result; stderr: ${err.trim()}`));
      const r = JSON.parse(line.slice('BENCH_RESULT '.length)) as Omit<ChildResult, 'wallMs'>;
      if (r.outcome !== v.expect) return reject(new Error(`${v.name}: expected ${v.expect}, got ${r.outcome}; stderr: ${err.trim()}`));
      resolve({ ...r, wallMs });
    });
  });
}

export interface ColdSummary {
  name: string;
  runs: number;
  /** In the child: `await import(bundle)` + first `handler(event)`. */
  medianMs: number;
  /** The least noisy run: what the code costs when nothing else on the machine gets in the way. */
  minMs: number;
  p90Ms: number;
  medianImportMs: number | null;
  medianFirstCallMs: number | null;
  /** CPU time (user + system) of the child over the same span: less sensitive to a busy machine than wall time. */
  medianCpuMs: number | null;
  /** performance.now() at the answer: from process start, Node's own bootstrap included. */
  medianSinceProcessStartMs: number | null;
  /** Parent's view: spawn to exit. */
  medianWallMs: number;
}

/** Runs every variant `runs` times, round-robin, one fresh process each. */
export async function coldStarts(variants: ColdVariant[], runs: number): Promise<ColdSummary[]> {
  const results = new Map<string, ChildResult[]>(variants.map((v) => [v.name, []]));
  // One untimed run each: file-system caches warm, as on a Lambda host that has the code.
  for (const v of variants) await runChild(v, -1);
  for (let r = 0; r < runs; r++) for (const v of variants) results.get(v.name)!.push(await runChild(v, r));
  return variants.map((v) => {
    const rs = results.get(v.name)!;
    const opt = (k: 'importMs' | 'firstCallMs' | 'cpuMs' | 'sinceProcessStartMs') => (rs.every((x) => typeof x[k] === 'number') ? median(rs.map((x) => x[k]!)) : null);
    return {
      name: v.name,
      runs: rs.length,
      medianMs: median(rs.map((x) => x.totalMs)),
      minMs: Math.min(...rs.map((x) => x.totalMs)),
      p90Ms: percentile(
        rs.map((x) => x.totalMs).sort((a, b) => a - b),
        90,
      ),
      medianImportMs: opt('importMs'),
      medianFirstCallMs: opt('firstCallMs'),
      medianCpuMs: opt('cpuMs'),
      medianSinceProcessStartMs: opt('sinceProcessStartMs'),
      medianWallMs: median(rs.map((x) => x.wallMs)),
    };
  });
}

