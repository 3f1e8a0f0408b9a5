/**
 * How the Latchkey repository bundles its Lambda functions with esbuild: the management
 * functions at synth time, and the authorizer into `@latchkey/cdk`'s pre-built asset (so the
 * package's consumers need neither esbuild nor this source tree). One set of esbuild settings
 * for both.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, type ILocalBundling } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { buildSync, formatMessagesSync, type BuildOptions, type Message, type Metafile } from 'esbuild';
import { AUTHORIZER_ASSET_DIR } from '../packages/cdk/src/latchkey-function.js';

/** Repository root: entries and `tsconfig.json` are resolved from it. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Absolute path of a file in the repository, e.g. `functions/users/handler.ts`. */
export function repoPath(relative: string): string {
  return fileURLToPath(new URL(relative, new URL('../', import.meta.url)));
}

/**
 * ESM bundles have no `require`; a CommonJS dependency that calls it for a Node built-in (none
 * of today's bundles does, a future one may) finds this one. It is made on its first call:
 * `createRequire` costs about half a millisecond, and with code splitting every chunk carries
 * the banner, so a banner that made it at once charged each file of every cold start.
 * The aliases keep the banner from clashing with a bundled module's own names.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __latchkeyCreateRequire } from 'node:module'; let __latchkeyRequire; const __latchkeyRequired = () => (__latchkeyRequire ??= __latchkeyCreateRequire(import.meta.url)); const require = Object.assign((id) => __latchkeyRequired()(id), { resolve: (id, options) => __latchkeyRequired().resolve(id, options) });";

/** Directory, inside a split bundle, of the chunks esbuild makes of dynamic imports and shared code. */
export const CHUNK_DIR = 'chunks';

/** Entry of the authorizer, bundled into `@latchkey/cdk`. */
export const AUTHORIZER_ENTRY = 'functions/authorizer/handler.ts';

/**
 * esbuild options of one function: `index.mjs` (export `handler`) with a source map next to it,
 * minified ESM for Node 22, every dependency (the AWS SDK too) bundled, so the functions run
 * exactly the versions the lockfile pins and the tests ran against.
 *
 * With `splitting`, each dynamic `import()` becomes its own chunk under `chunks/`, read and
 * parsed only when first imported: code behind a lazy import then costs nothing at cold start.
 */
export function bundleOptions(entry: string, opts: { splitting?: boolean } = {}): BuildOptions {
  return {
    entryPoints: { index: entry.startsWith('/') ? entry : repoPath(entry) },
    absWorkingDir: REPO_ROOT,
    bundle: true,
    splitting: opts.splitting ?? false,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    tsconfig: repoPath('tsconfig.json'),
    outExtension: { '.js': '.mjs' },
    chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
    logLevel: 'warning',
  };
}

/**
 * Local-only bundling through esbuild's API. A class rather than an object literal: the asset
 * cache key is the JSON of the bundling options, so the esbuild options must be in it, or two
 * functions with different entries would share one bundle.
 */
class EsbuildBundling implements ILocalBundling {
  constructor(readonly options: BuildOptions) {}

  tryBundle(outputDir: string): boolean {
    buildFunction(this.options, outputDir);
    return true;
  }
}

/**
 * Builds one function into `outDir`; a split build then gets its eager chunks merged into
 * `index.mjs` (`mergeEagerChunks`).
 */
export function buildFunction(options: BuildOptions, outDir: string): { metafile: Metafile; merged: string[] } {
  const { metafile } = buildSync({ ...options, outdir: outDir, metafile: true });
  return { metafile: metafile!, merged: options.splitting ? mergeEagerChunks(outDir, metafile!, options) : [] };
}

/** A relative ESM specifier of `to` from the directory `fromDir`. */
function importPath(fromDir: string, to: string): string {
  const path = relative(fromDir, to);
  return path.startsWith('.') ? path : `./${path}`;
}

/** An export name as written in an `export { … } from` clause: quoted unless an identifier (`export { x as 'a-b' }` is valid ES2022). */
function exportName(name: string): string {
  return /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u.test(name) ? name : JSON.stringify(name);
}

/**
 * esbuild's code splitting puts every module shared by the entry and a lazy chunk into chunks
 * of their own, so a cold start reads, compiles and links several files (the authorizer's JWT
 * path: three) before its first answer. This folds the chunks the entry imports statically
 * into `index.mjs` and leaves in their place a one-line module that re-exports the same names
 * from `index.mjs`: lazy chunks still import them from there, so they share one instance of
 * every module (one `CredentialsError` class for `instanceof`, one cache). A chunk no lazy
 * chunk imports is removed. Lazy chunks are untouched and still loaded on first use. Answers
 * the chunks merged, as paths of the metafile: none when the entry's code has a top-level
 * await and a lazy chunk imports a merged one (see below), whose split is left as it is.
 */
export function mergeEagerChunks(outDir: string, metafile: Metafile, options: BuildOptions): string[] {
  const base = options.absWorkingDir ?? process.cwd();
  const abs = (p: string) => (p.startsWith('/') ? p : join(base, p));
  // esbuild took a relative outdir from the working directory; so does everything below.
  outDir = abs(outDir);
  const paths = new Map(Object.keys(metafile.outputs).map((p) => [abs(p), p]));
  const outputs = new Map(Object.entries(metafile.outputs).filter(([p]) => p.endsWith('.mjs')).map(([p, o]) => [abs(p), o]));
  const entry = join(outDir, 'index.mjs');
  const eager = new Set<string>();
  const visit = (file: string) => {
    for (const im of outputs.get(file)?.imports ?? []) {
      const target = abs(im.path);
      if (im.kind === 'import-statement' && !im.external && outputs.has(target) && !eager.has(target)) {
        eager.add(target);
        visit(target);
      }
    }
  };
  visit(entry);
  if (eager.size === 0) return [];
  const lazy = [...outputs.keys()].filter((f) => f !== entry && !eager.has(f));
  const importedByLazy = new Set(lazy.flatMap((f) => outputs.get(f)!.imports.map((im) => abs(im.path))));
  const own = outputs.get(entry)!.exports;
  // The merged chunks' names are exported from index.mjs under a prefix none of the entry's own names starts with.
  let tag = '__lk';
  while (own.some((n) => n.startsWith(tag))) tag += '_';
  const chunks = [...eager].sort().map((file, i) => ({ file, prefix: `${tag}${i}_`, names: outputs.get(file)!.exports }));
  // Every file esbuild wrote starts with the banner. index.mjs needs it once, at the top, where
  // the merge pass puts it: the merged files' copies are blanked, their lines left empty so their
  // source maps still line up (not minified, their names would clash with the new copy's).
  const banner = options.banner?.js;
  const unbanner = (code: string) => (banner !== undefined && code.startsWith(`${banner}\n`) ? banner.replace(/[^\n]/g, '') + code.slice(banner.length) : code);
  const originals = new Map(chunks.map((c) => [c.file, readFileSync(c.file, 'utf8')]));
  for (const [file, code] of originals) writeFileSync(file, unbanner(code));
  // The facade is index.mjs itself with the merged chunks' names re-exported: so the entry keeps
  // every export it had, as it had it (a default one, string names, `export *` from a Node
  // built-in: a star re-export esbuild only keeps in an entry point, and the metafile does not list).
  const facade = join(outDir, '__merged.mjs');
  const code = unbanner(readFileSync(entry, 'utf8'));
  const mapComment = code.lastIndexOf('\n//# sourceMappingURL=');
  const reexports = chunks.map((c) => `export { ${c.names.map((n) => `${exportName(n)} as ${exportName(c.prefix + n)}`).join(', ')} } from '${importPath(outDir, c.file)}';`).join('\n');
  writeFileSync(facade, mapComment < 0 ? `${code}\n${reexports}\n` : `${code.slice(0, mapComment)}\n${reexports}${code.slice(mapComment)}`);
  const merged = join(outDir, '__merged.out.mjs');
  // A lazy chunk that imports a merged chunk now depends on index.mjs itself. If index.mjs has a
  // top-level await (one that may be waiting for that very lazy chunk), the chunk's evaluation
  // waits for the entry's and the entry's for the chunk: neither ever ends. Such a bundle keeps
  // esbuild's split as it is, where the shared chunks are evaluated before the entry.
  const stubs = chunks.some((c) => importedByLazy.has(c.file));
  try {
    const { warnings } = buildSync({
      ...options,
      entryPoints: [facade],
      outfile: merged,
      outdir: undefined,
      splitting: false,
      metafile: false,
      // Lazy chunks stay files of their own (esbuild's synchronous API takes no plugins; absolute paths mark files external).
      external: [...((options.external as string[] | undefined) ?? []), ...lazy],
      supported: stubs ? { ...options.supported, 'top-level-await': false } : options.supported,
      // Silent, so that a top-level await found is no error printed; other errors are thrown, warnings shown below.
      logLevel: 'silent',
    });
    if (options.logLevel !== 'silent' && options.logLevel !== 'error') for (const w of formatMessagesSync(warnings, { kind: 'warning', color: false })) process.stderr.write(w);
  } catch (e) {
    for (const [file, code] of originals) writeFileSync(file, code);
    rmSync(facade);
    rmSync(merged, { force: true });
    rmSync(`${merged}.map`, { force: true });
    const errors = (e as { errors?: Message[] }).errors ?? [];
    if (stubs && errors.length > 0 && errors.every((m) => m.text.startsWith('Top-level await'))) return [];
    throw e;
  }
  renameSync(merged, entry);
  if (existsSync(`${merged}.map`)) {
    writeFileSync(entry, readFileSync(entry, 'utf8').replace(/(\/\/# sourceMappingURL=)__merged\.out\.mjs\.map(\s*)$/, '$1index.mjs.map$2'));
    renameSync(`${merged}.map`, `${entry}.map`);
  }
  rmSync(facade);
  for (const c of chunks) {
    rmSync(`${c.file}.map`, { force: true });
    if (!importedByLazy.has(c.file)) rmSync(c.file);
    else writeFileSync(c.file, `export { ${c.names.map((n) => `${exportName(c.prefix + n)} as ${exportName(n)}`).join(', ')} } from '${importPath(dirname(c.file), entry)}';\n`);
  }
  return chunks.map((c) => paths.get(c.file)!);
}

/**
 * Code of a function bundled by esbuild at synth time. Hashed by its output, so any change to
 * what it bundles changes the asset. Bundling is skipped like any other asset's when the stack
 * is excluded (context `aws:cdk:bundling-stacks`); it never falls back to Docker.
 */
export function bundledCode(entry: string, opts: { splitting?: boolean } = {}): lambda.Code {
  return lambda.Code.fromAsset(REPO_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Only used if local bundling declined, which it never does: there is no Docker here.
      image: DockerImage.fromRegistry('local-esbuild-only'),
      local: new EsbuildBundling(bundleOptions(entry, opts)),
    },
  });
}

/** Whether two directories hold the same files with the same bytes. */
function sameTree(a: string, b: string): boolean {
  if (!existsSync(a) || !existsSync(b)) return false;
  const files = (dir: string) => (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[]).filter((d) => d.isFile()).map((d) => relative(dir, join(d.parentPath, d.name))).sort();
  const left = files(a);
  const right = files(b);
  return left.length === right.length && left.every((f, i) => f === right[i] && readFileSync(join(a, f)).equals(readFileSync(join(b, f))));
}

/**
 * Bundles the authorizer, split, into `@latchkey/cdk`'s asset directory. Run by the package's
 * build, by `infra/app.ts` before every synth and by the tests' global setup, so the
 * repository's own stack always deploys the current source. The bundle is built aside and
 * moved in only when it differs (esbuild's output is deterministic), so concurrent synths of
 * the same source never see the directory half-written or missing.
 */
export function buildAuthorizerAsset(outDir: string = AUTHORIZER_ASSET_DIR): void {
  const staging = `${outDir}.${process.pid}.${Date.now()}`;
  try {
    buildFunction(bundleOptions(AUTHORIZER_ENTRY, { splitting: true }), staging);
    if (sameTree(staging, outDir)) return;
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(dirname(outDir), { recursive: true });
    renameSync(staging, outDir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
