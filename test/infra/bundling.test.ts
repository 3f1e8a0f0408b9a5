/** How the repository bundles functions (`infra/bundling.ts`): at synth, and into the package's asset. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSync, type BuildOptions } from 'esbuild';
import { buildAuthorizerAsset, buildFunction, bundleOptions, bundledCode, ESM_REQUIRE_BANNER } from '../../infra/bundling.js';

const tmp = mkdtempSync(join(tmpdir(), 'latchkey-bundling-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A two-file handler: the answer comes from a dynamically imported module. */
function writeEntry(name: string, answer: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lazy.ts'), `export const answer: string = ${JSON.stringify(answer)};\n`);
  writeFileSync(join(dir, 'entry.ts'), "export const handler = async (): Promise<string> => (await import('./lazy.js')).answer;\n");
  return join(dir, 'entry.ts');
}

/** Writes `files` (path → source) into a fresh directory under the suite's temp dir; answers the directory. */
function writeSources(name: string, files: Record<string, string>): string {
  const dir = join(tmp, name);
  for (const [file, code] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), code);
  }
  return dir;
}

/** Writes `files` (as `writeSources`) and builds their `entry.ts` split into `out/` beside them, from their directory and without a tsconfig; answers that directory and the chunks merged. */
function buildSources(name: string, files: Record<string, string>, options: BuildOptions = {}): { outdir: string; merged: string[] } {
  const dir = writeSources(name, files);
  const outdir = join(dir, 'out');
  const { merged } = buildFunction({ ...bundleOptions(join(dir, 'entry.ts'), { splitting: true }), absWorkingDir: dir, tsconfig: undefined, ...options }, outdir);
  return { outdir, merged };
}

/** Imports `file` in a fresh `node` (a hung top-level await makes Node exit 13 there, rather than hang the test) and answers what `script` writes. */
function runInNode(file: string, script: string, nodeArgs: string[] = []): string {
  const run = `const mod = await import(${JSON.stringify(pathToFileURL(file).href)});\n${script}`;
  return execFileSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', run], { encoding: 'utf8', timeout: 30_000 });
}

describe('bundledCode (management functions)', () => {
  function synthWith(entries: Record<string, string>) {
    const outdir = mkdtempSync(join(tmp, 'out-'));
    const app = new App({ outdir });
    const stack = new Stack(app, 'S');
    const fns = Object.entries(entries).map(
      ([id, entry]) => new lambda.Function(stack, id, { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: bundledCode(entry) }),
    );
    app.synth();
    const asset = (fn: lambda.Function) => fn.node.findChild('Code') as s3assets.Asset;
    return fns.map((fn) => ({ hash: asset(fn).assetHash, dir: join(outdir, asset(fn).assetPath) }));
  }

  it('bundles one ESM file with its map, and the asset hash follows the sources', async () => {
    const [v1] = synthWith({ A: writeEntry('v1', 'one') });
    expect(readdirSync(v1!.dir).sort()).toEqual(['index.mjs', 'index.mjs.map']);
    const { handler } = (await import(pathToFileURL(join(v1!.dir, 'index.mjs')).href)) as { handler: () => Promise<string> };
    await expect(handler()).resolves.toBe('one');

    // A change in an imported source changes the hash; the same sources give the same one.
    const entry = writeEntry('v1', 'uno');
    const [changed, other] = synthWith({ A: entry, B: writeEntry('v2', 'two') });
    expect(changed!.hash).not.toBe(v1!.hash);
    expect(synthWith({ A: entry })[0]!.hash).toBe(changed!.hash);
    // Two functions with different entries in one app each get their own bundle.
    expect(other!.hash).not.toBe(changed!.hash);
  }, 90_000); // three synths with esbuild: seconds each on a loaded machine
});

describe('buildAuthorizerAsset (the package asset)', () => {
  it('builds the split authorizer, leaves an identical build untouched, replaces a different one, leaves no staging', () => {
    const parent = join(tmp, 'asset');
    const out = join(parent, 'authorizer');
    buildAuthorizerAsset(out);
    const files = readdirSync(out).sort();
    expect(files).toEqual(['chunks', 'index.mjs', 'index.mjs.map']);
    const before = statSync(join(out, 'index.mjs'));

    buildAuthorizerAsset(out);
    // Same source, same bytes: the files were not rewritten, so a concurrent reader never misses them.
    expect(statSync(join(out, 'index.mjs')).ino).toBe(before.ino);
    expect(statSync(join(out, 'index.mjs')).mtimeMs).toBe(before.mtimeMs);

    writeFileSync(join(out, 'stale.mjs'), 'export {};\n');
    buildAuthorizerAsset(out);
    expect(readdirSync(out).sort()).toEqual(files);
    expect(readdirSync(parent)).toEqual(['authorizer']);
  }, 90_000); // three bundles of the whole authorizer
});

describe('the require banner', () => {
  it('gives a CommonJS dependency a working require, made on its first call only', async () => {
    const dir = writeSources('cjs', {
      // A CommonJS package that requires Node built-ins, at load and lazily, as older packages do.
      'node_modules/legacy/package.json': JSON.stringify({ name: 'legacy', main: 'index.js' }),
      'node_modules/legacy/index.js': "const path = require('node:path');\nexports.base = (p) => path.basename(p);\nexports.later = () => require('node:os').EOL;\nexports.where = () => require.resolve('node:fs');\n",
      'entry.ts': "import { base, later, where } from 'legacy';\nexport const handler = async () => [base('/a/b.txt'), later(), where()];\n",
    });
    const outdir = join(dir, 'out');
    buildSync({ ...bundleOptions(join(dir, 'entry.ts'), { splitting: true }), absWorkingDir: dir, outdir, tsconfig: undefined });
    const { handler } = (await import(pathToFileURL(join(outdir, 'index.mjs')).href)) as { handler: () => Promise<string[]> };
    await expect(handler()).resolves.toEqual(['b.txt', '\n', 'node:fs']);
  });

  it.each([true, false])('serves merged and lazy code of a merged split bundle from one copy at the top of index.mjs (minify: %s)', (minify) => {
    // `legacy` is used by the entry and a lazy module, so its code and esbuild's require shim sit
    // in a chunk merged into index.mjs; `other`, used lazily only, stays in the lazy chunk.
    const { outdir, merged } = buildSources(`cjs-merged-${minify}`, {
      'node_modules/legacy/package.json': JSON.stringify({ name: 'legacy', main: 'index.js' }),
      'node_modules/legacy/index.js': "const path = require('node:path');\nexports.base = (p) => path.basename(p);\nexports.later = () => require('node:os').EOL;\nexports.Legacy = class Legacy {};\n",
      'node_modules/other/package.json': JSON.stringify({ name: 'other', main: 'index.js' }),
      'node_modules/other/index.js': "exports.where = () => require.resolve('node:fs');\nexports.cpus = () => typeof require('node:os').cpus;\n",
      'lazy.ts': "import { later, Legacy } from 'legacy';\nimport { cpus, where } from 'other';\nexport const run = () => [later(), where(), cpus(), new Legacy()] as const;\n",
      'entry.ts': "import { base, later, Legacy } from 'legacy';\nexport const handler = async () => { const [eol, fs, cpus, legacy] = (await import('./lazy.js')).run(); return [base('/a/b.txt'), later(), eol, fs, cpus, legacy instanceof Legacy]; };\n",
    }, { minify });
    expect(merged.length).toBeGreaterThan(0);
    const script = 'process.stdout.write(JSON.stringify(await mod.handler()));';
    expect(JSON.parse(runInNode(join(outdir, 'index.mjs'), script))).toEqual(['b.txt', '\n', '\n', 'node:fs', 'function', true]);
    const code = readFileSync(join(outdir, 'index.mjs'), 'utf8');
    expect(code.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
    // One require for the whole file: the banners of the files merged into it are not repeated.
    expect(code.match(/\bcreateRequire\b/g)).toHaveLength(1);
  });

  it('creates no require in a bundle that never calls it', () => {
    const dir = writeSources('no-cjs', { 'entry.ts': 'export const handler = async () => 42;\n' });
    const outdir = join(dir, 'out');
    buildSync({ ...bundleOptions(join(dir, 'entry.ts')), absWorkingDir: dir, outdir, tsconfig: undefined });
    // The banner defines require; only a call makes one (createRequire is not called at load).
    const code = readFileSync(join(outdir, 'index.mjs'), 'utf8');
    expect(code).toContain('__latchkeyCreateRequire');
    expect(code).not.toMatch(/const require\s*=\s*__latchkeyCreateRequire\(/);
  });
});

describe('merged eager chunks (a split build)', () => {
  it('puts what the entry imports statically into index.mjs, and lazy chunks share its modules', async () => {
    // A class and a counter shared by the entry and a lazily imported module: one instance of each, or instanceof and state break.
    const dir = writeSources('merge', {
      'shared.ts': 'export class Shared {}\nexport let count = 0;\nexport const bump = (): number => ++count;\n',
      'only-eager.ts': 'export const eager = (): string => "eager";\n',
      'lazy.ts': "import { Shared, bump } from './shared.js';\nexport const make = (): Shared => new Shared();\nexport const bumpTwice = (): number => (bump(), bump());\n",
      'entry.ts':
        "import { Shared, bump } from './shared.js';\nimport { eager } from './only-eager.js';\nexport const handler = async () => { bump(); const lazy = await import('./lazy.js'); return { same: lazy.make() instanceof Shared, count: lazy.bumpTwice(), eager: eager() }; };\nexport default 'the default export';\n",
    });
    const outdir = join(dir, 'out');
    const { merged } = buildFunction(bundleOptions(join(dir, 'entry.ts'), { splitting: true }), outdir);
    expect(merged.length).toBeGreaterThan(0);
    const files = (readdirSync(outdir, { recursive: true }) as string[]).filter((f) => statSync(join(outdir, f)).isFile()).sort();
    const index = readFileSync(join(outdir, 'index.mjs'), 'utf8');
    // index.mjs imports no chunk statically: the only chunk reference is the dynamic import.
    expect(index).not.toMatch(/from\s*"\.\/chunks\//);
    expect(index).toMatch(/import\("\.\/chunks\/lazy-[A-Z0-9]+\.mjs"\)/);
    expect(index).toContain('//# sourceMappingURL=index.mjs.map');
    expect(files).toContain('index.mjs.map');
    // The shared chunk is now a re-export of index.mjs, without a map; nothing is left of the merge itself.
    const stubs = files.filter((f) => f.endsWith('.mjs') && readFileSync(join(outdir, f), 'utf8').includes("from '../index.mjs'"));
    expect(stubs).toHaveLength(1);
    expect(files).not.toContain(`${stubs[0]}.map`);
    expect(files.filter((f) => f.includes('__merged'))).toEqual([]);
    const mod = (await import(pathToFileURL(join(outdir, 'index.mjs')).href)) as { handler: () => Promise<unknown>; default: string };
    await expect(mod.handler()).resolves.toEqual({ same: true, count: 3, eager: 'eager' });
    // The entry keeps its exports, a default one too, and only them (the merged chunks' names are internal).
    expect(Object.keys(mod).filter((k) => !k.startsWith('__lk')).sort()).toEqual(['default', 'handler']);
    expect(mod.default).toBe('the default export');
  });

  it('leaves a build without shared chunks as it is', () => {
    const outdir = join(tmp, 'merge-none');
    const { merged } = buildFunction(bundleOptions(writeEntry('merge-none-src', 'x'), { splitting: true }), outdir);
    expect(merged).toEqual([]);
    expect((readdirSync(outdir, { recursive: true }) as string[]).filter((f) => f.endsWith('.mjs')).length).toBe(2);
  });

  it('never makes a lazy chunk wait for an entry whose top-level await is loading it', () => {
    // Before the merge the lazy chunk imports the shared chunk, evaluated before the entry; after
    // it, the entry itself, whose evaluation waits for the lazy chunk: neither would ever finish.
    const { outdir, merged } = buildSources('merge-tla', {
      'shared.ts': 'export class Shared {}\n',
      'lazy.ts': "import { Shared } from './shared.js';\nexport const make = (): Shared => new Shared();\n",
      'entry.ts': "import { Shared } from './shared.js';\nconst lazy = await import('./lazy.js');\nconst same = lazy.make() instanceof Shared;\nexport const handler = async () => same;\n",
    });
    expect(runInNode(join(outdir, 'index.mjs'), 'process.stdout.write(String(await mod.handler()));')).toBe('true');
    // The split is kept as esbuild made it, and nothing is left of the attempted merge.
    expect(merged).toEqual([]);
    expect(readdirSync(outdir).sort()).toEqual(['chunks', 'index.mjs', 'index.mjs.map']);
    const chunks = readdirSync(join(outdir, 'chunks')).filter((f) => f.endsWith('.mjs'));
    expect(chunks).toHaveLength(2);
    for (const f of ['index.mjs', ...chunks.map((c) => join('chunks', c))]) expect(readFileSync(join(outdir, f), 'utf8').startsWith(ESM_REQUIRE_BANNER), f).toBe(true);
  });

  it("keeps every export of the entry: one named like the merge's own, a string name, an external module's export *", () => {
    const { outdir, merged } = buildSources('merge-names', {
      'shared.ts': 'export class Shared {}\nexport const tag = (): string => "shared";\n',
      'lazy.ts': "import { Shared, tag } from './shared.js';\nexport const make = (): Shared => new Shared();\nexport { tag as 'lazy-tag' };\n",
      'entry.ts': [
        "import { Shared } from './shared.js';",
        "export * from 'node:path';",
        "export const __lk0_a = 'mine';",
        "export const __lk1_a = 'mine too';",
        "const handler = async () => [(await import('./lazy.js')).make() instanceof Shared, (await import('./lazy.js'))['lazy-tag']()];",
        "export { handler, handler as 'the-handler' };",
        '',
      ].join('\n'),
    });
    expect(merged.length).toBeGreaterThan(0);
    const script = "process.stdout.write(JSON.stringify([mod.__lk0_a, mod.__lk1_a, mod['the-handler'] === mod.handler, typeof mod.basename, await mod.handler()]));";
    expect(JSON.parse(runInNode(join(outdir, 'index.mjs'), script))).toEqual(['mine', 'mine too', true, 'function', [true, 'shared']]);
  });

  it('merges into an output directory given relative to the working directory, as esbuild takes it', () => {
    const dir = writeSources('merge-relative', {
      'shared.ts': 'export class Shared {}\n',
      'lazy.ts': "import { Shared } from './shared.js';\nexport const make = (): Shared => new Shared();\n",
      'entry.ts': "import { Shared } from './shared.js';\nexport const handler = async () => (await import('./lazy.js')).make() instanceof Shared;\n",
    });
    const { merged } = buildFunction({ ...bundleOptions(join(dir, 'entry.ts'), { splitting: true }), absWorkingDir: dir, tsconfig: undefined }, 'out');
    expect(merged.length).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'out', 'index.mjs'), 'utf8')).not.toMatch(/from\s*"\.\/chunks\//);
    expect(runInNode(join(dir, 'out', 'index.mjs'), 'process.stdout.write(String(await mod.handler()));')).toBe('true');
  });

  it.each([ESM_REQUIRE_BANNER, `// a banner\n// of lines\n${ESM_REQUIRE_BANNER}`])('maps stack traces of merged and lazy code to the sources under --enable-source-maps (banner %#)', (banner) => {
    const { outdir, merged } = buildSources(`merge-maps-${banner.length}`, {
      'shared.ts': 'export class Shared {}\n\n\nexport function failShared(): never {\n  throw new Error("shared");\n}\n',
      'lazy.ts': "import { Shared, failShared } from './shared.js';\n\nexport const make = (): Shared => new Shared();\nexport function failLazy(): never {\n  throw new Error('lazy');\n}\nexport const failThroughShared = (): never => failShared();\n",
      'entry.ts': [
        "import { Shared, failShared } from './shared.js';",
        '',
        'function failEntry(): never {',
        "  throw new Error('entry');",
        '}',
        'export const handler = async (): Promise<string[]> => {',
        "  const lazy = await import('./lazy.js');",
        '  return [failEntry, failShared, lazy.failLazy, lazy.failThroughShared].map((f) => {',
        '    try {',
        '      f();',
        "      return 'no error';",
        '    } catch (e) {',
        "      return (e as Error).stack!.split('\\n')[1]!.replace(/^.*\\((.*)\\)$/, '$1').replace(/^.*\\//, '');",
        '    }',
        '  });',
        '};',
        'export const shared = new Shared();',
        '',
      ].join('\n'),
    }, { banner: { js: banner } });
    expect(merged.length).toBeGreaterThan(0);
    const frames = JSON.parse(runInNode(join(outdir, 'index.mjs'), 'process.stdout.write(JSON.stringify(await mod.handler()));', ['--enable-source-maps'])) as string[];
    expect(frames).toEqual(['entry.ts:4:9', 'shared.ts:5:9', 'lazy.ts:5:9', 'shared.ts:5:9']);
  });

  it("resolves a merged chunk's own import() from index.mjs, and lazy chunks that load lazy chunks share its modules and live bindings", async () => {
    const { outdir, merged } = buildSources('merge-nested', {
      // Shared by the entry and both lazy modules, with a side effect that must run once, and an
      // import() of its own: written relative to chunks/, it runs from index.mjs once merged.
      'shared.ts': [
        '(globalThis as { loads?: number }).loads = ((globalThis as { loads?: number }).loads ?? 0) + 1;',
        'export class Shared {}',
        'export let count = 0;',
        'export const bump = (): number => ++count;',
        "export const loadOuter = () => import('./outer.js');",
        '',
      ].join('\n'),
      'outer.ts': "import { bump } from './shared.js';\nexport const loadInner = () => (bump(), import('./inner.js'));\n",
      'inner.ts': "import { Shared, count, bump } from './shared.js';\nexport const read = (): number => count;\nexport const make = (): Shared => new Shared();\nexport const bumpHere = (): number => bump();\n",
      'entry.ts': [
        "import { Shared, bump, count, loadOuter } from './shared.js';",
        'export const handler = async () => {',
        '  bump();',
        '  const inner = await (await loadOuter()).loadInner();',
        '  const seenByLazy = inner.read();',
        '  inner.bumpHere();',
        '  return { seenByLazy, seenByEntry: count, same: inner.make() instanceof Shared, loads: (globalThis as { loads?: number }).loads };',
        '};',
        '',
      ].join('\n'),
    });
    expect(merged.length).toBeGreaterThan(0);
    expect(readFileSync(join(outdir, 'index.mjs'), 'utf8')).toMatch(/import\("\.\/chunks\/outer-[A-Z0-9]+\.mjs"\)/);
    const { handler } = (await import(pathToFileURL(join(outdir, 'index.mjs')).href)) as { handler: () => Promise<unknown> };
    await expect(handler()).resolves.toEqual({ seenByLazy: 2, seenByEntry: 3, same: true, loads: 1 });
  });
});
