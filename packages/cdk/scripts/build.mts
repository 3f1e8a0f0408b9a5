/**
 * Builds `@latchkey/cdk` for publishing (`npm run build`, also run by `npm pack`):
 * - `assets/authorizer/`: the authorizer, bundled and split from Latchkey's sources, so
 *   consumers need neither esbuild nor this repository;
 * - `lib/index.js`: the constructs as one CommonJS file (aws-cdk-lib and constructs stay peer
 *   imports), `import.meta.url` mapped to the file's own URL;
 * - `lib/*.d.ts`: declarations by tsc.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { buildAuthorizerAsset } from '../../../infra/bundling.js';

const PACKAGE_DIR = fileURLToPath(new URL('../', import.meta.url));
const LIB = fileURLToPath(new URL('../lib/', import.meta.url));

buildAuthorizerAsset();
rmSync(LIB, { recursive: true, force: true });
buildSync({
  entryPoints: [fileURLToPath(new URL('../src/index.ts', import.meta.url))],
  outfile: `${LIB}index.js`,
  bundle: true,
  packages: 'external',
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  define: { 'import.meta.url': '__latchkeyModuleUrl' },
  banner: { js: "'use strict';\nconst __latchkeyModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: PACKAGE_DIR, stdio: 'inherit' });
