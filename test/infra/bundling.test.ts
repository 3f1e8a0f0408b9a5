/** How the repository bundles functions (`infra/bundling.ts`): at synth, and into the package's asset. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAuthorizerAsset, bundledCode } from '../../infra/bundling.js';

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
