/**
 * How the Latchkey repository bundles its Lambda functions with esbuild: the management
 * functions at synth time, and the authorizer into `@latchkey/cdk`'s pre-built asset (so the
 * package's consumers need neither esbuild nor this source tree). One set of esbuild settings
 * for both.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, type Dirent } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage, type ILocalBundling } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { buildSync, type BuildOptions } from 'esbuild';
import { AUTHORIZER_ASSET_DIR } from '../packages/cdk/src/latchkey-function.js';

/** Repository root: entries and `tsconfig.json` are resolved from it. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Absolute path of a file in the repository, e.g. `functions/users/handler.ts`. */
export function repoPath(relative: string): string {
  return fileURLToPath(new URL(relative, new URL('../', import.meta.url)));
}

/**
 * ESM bundles have no `require`; a few CommonJS dependencies still call it for Node built-ins.
 * The alias keeps the banner from clashing with a bundled module's own `createRequire` import.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __latchkeyCreateRequire } from 'node:module'; const require = __latchkeyCreateRequire(import.meta.url);";

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
    buildSync({ ...this.options, outdir: outputDir });
    return true;
  }
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
    buildSync({ ...bundleOptions(AUTHORIZER_ENTRY, { splitting: true }), outdir: staging });
    if (sameTree(staging, outDir)) return;
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(dirname(outDir), { recursive: true });
    renameSync(staging, outDir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
