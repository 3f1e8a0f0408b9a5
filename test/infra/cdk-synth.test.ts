/**
 * The real CLI, offline: `cdk synth` runs `infra/app.ts` through `cdk.json`, bundles the three
 * functions with the local esbuild and runs cdk-nag. Runs only once all handler entries exist.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CHUNK_DIR } from '../../infra/bundling.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRIES = ['functions/authorizer/handler.ts', 'functions/tenants/handler.ts', 'functions/users/handler.ts'];
const haveEntries = ENTRIES.every((e) => existsSync(join(ROOT, e)));

const outdir = mkdtempSync(join(tmpdir(), 'latchkey-synth-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

interface Template {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> }>;
}

const BANNER = "import { createRequire as __latchkeyCreateRequire } from 'node:module';";

const variablesOf = (fn: Template['Resources'][string]) => (fn.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};

/** Files `entry` imports statically, transitively (itself included): what a cold start reads. */
function staticClosure(dir: string, entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = readFileSync(join(dir, file), 'utf8');
    for (const m of code.matchAll(/(?:\bfrom|\bimport)\s*"(\.\.?\/[^"]+)"/g)) queue.push(normalize(join(dirname(file), m[1]!)));
  }
  return seen;
}

describe('cdk synth (CLI, offline)', () => {
  it.runIf(haveEntries)(
    'synthesizes both stacks and bundles each function as minified ESM split into chunks, with source maps',
    async () => {
      await promisify(execFile)('npx', ['cdk', 'synth', '--no-notices', '-q', '-o', outdir], {
        cwd: ROOT,
        env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true', CDK_DISABLE_VERSION_CHECK: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
        maxBuffer: 16 * 1024 * 1024,
      });

      const template = JSON.parse(readFileSync(join(outdir, 'Latchkey.template.json'), 'utf8')) as Template;
      expect(existsSync(join(outdir, 'LatchkeyExample.template.json'))).toBe(true);
      // Latchkey's own functions; CDK's trigger provider (a framework function) is not ours to bundle.
      const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function' && variablesOf(r).POWERTOOLS_SERVICE_NAME !== undefined);
      expect(functions).toHaveLength(7); // authorizer, tenants, users, public, state migration, usage-key backfill, orphan reconciler
      const isAuthorizer = (f: (typeof functions)[number]) => variablesOf(f).POWERTOOLS_SERVICE_NAME === 'latchkey-authorizer';
      expect(functions.filter(isAuthorizer)).toHaveLength(1);
      // The authorizer and the two management functions are split into lazily read chunks; the
      // public function, the two deployment migrations and the reconciler are one file each.
      const SPLIT = ['latchkey-authorizer', 'latchkey-tenants', 'latchkey-users'];
      for (const fn of functions) {
        expect(fn.Properties?.Handler).toBe('index.handler');
        const asset = join(outdir, String(fn.Metadata?.['aws:asset:path']));
        const files = (readdirSync(asset, { recursive: true }) as string[]).filter((f) => statSync(join(asset, f)).isFile()).sort();
        const code = readFileSync(join(asset, 'index.mjs'), 'utf8');
        expect(code).toMatch(/export\s*\{[^}]*\bas handler\b|export\s*\{\s*handler\s*\}/);
        expect(code.length / code.split('\n').length).toBeGreaterThan(1000); // minified
        // index.mjs, chunks/*.mjs, a map next to each; every file has the banner (esbuild's
        // `require` shim may live in any chunk), except what stands for a chunk merged into
        // index.mjs: one line re-exporting its names from index.mjs, for the lazy chunks.
        const js = files.filter((f) => f.endsWith('.mjs'));
        const isStub = (f: string) => /^export \{[^}]*\} from '\.\.\/index\.mjs';\n$/.test(readFileSync(join(asset, f), 'utf8'));
        const stubs = js.filter(isStub);
        expect(js.length).toBeGreaterThan(SPLIT.includes(variablesOf(fn).POWERTOOLS_SERVICE_NAME as string) ? 3 : 0);
        expect(files).toEqual([...js, ...js.filter((f) => !stubs.includes(f)).map((f) => `${f}.map`)].sort());
        for (const f of js.filter((f) => f !== 'index.mjs')) expect(dirname(f), f).toBe(CHUNK_DIR);
        for (const f of js.filter((f) => !stubs.includes(f))) expect(readFileSync(join(asset, f), 'utf8').startsWith(BANNER), f).toBe(true);
        const lazy = [...code.matchAll(/import\("\.\/([^"]+)"\)/g)].map((m) => m[1]!);
        const eager = staticClosure(asset, 'index.mjs');
        for (const f of lazy) expect(eager.has(f), f).toBe(false);
        const eagerCode = [...eager].map((f) => readFileSync(join(asset, f), 'utf8')).join('\n');
        const allCode = js.map((f) => readFileSync(join(asset, f), 'utf8')).join('\n');
        const size = (fs: Iterable<string>) => [...fs].reduce((n, f) => n + statSync(join(asset, f)).size, 0);
        if (!isAuthorizer(fn)) {
          // Management functions keep runtime source maps (their error logs carry stack traces);
          // the Auth0 SDK and Powertools idempotency are in chunks that only their first use loads.
          expect(variablesOf(fn).NODE_OPTIONS).toBe('--enable-source-maps');
          if (!SPLIT.includes(variablesOf(fn).POWERTOOLS_SERVICE_NAME as string)) continue;
          for (const marker of ['Auth0-Client', 'POWERTOOLS_IDEMPOTENCY_DISABLED']) {
            expect(allCode, marker).toContain(marker);
            expect(eagerCode, marker).not.toContain(marker);
          }
          continue;
        }
        // The authorizer runs without source maps, and the API-key path (and the AWS SDK with
        // it) is only imported dynamically: in chunks the JWT path's cold start never reads.
        expect(variablesOf(fn).NODE_OPTIONS).toBeUndefined();
        // One split point (functions/authorizer/lazy.ts), and the chunks it shares with the entry
        // merged into it: a cold start of the JWT path reads one file.
        expect(lazy.map((f) => f.replace(/-[A-Z0-9]+\.mjs$/, ''))).toEqual(['chunks/lazy']);
        expect([...eager]).toEqual(['index.mjs']);
        // The JWT path reads the principal-state feed (and flushes usage counts) with a small SigV4
        // signer over node:http: it names DynamoDB's JSON protocol (`DynamoDB_20120810.Query`) by
        // design, never the AWS SDK.
        expect(eagerCode).not.toMatch(/DynamoDBClient|DynamoDBDocumentClient|@aws-sdk|@smithy/);
        expect(size(eager)).toBeLessThan(size(js) / 3);
        expect(stubs.length).toBeGreaterThan(0); // the lazy chunk shares modules with the entry
      }

      // The authorizer bundle loads as ESM on Node and answers a request without credentials.
      const authorizer = functions.find(isAuthorizer)!;
      const bundle = pathToFileURL(join(outdir, String(authorizer.Metadata?.['aws:asset:path']), 'index.mjs')).href;
      const script = `const { handler } = await import(${JSON.stringify(bundle)});
        const rest = await handler({ type: 'REQUEST', methodArn: 'arn:aws:execute-api:eu-west-1:111111111111:abc/v1/GET/tenants', headers: {} }).then(() => 'allowed', (e) => e.message);
        const http = await handler({ version: '2.0', type: 'REQUEST', routeArn: 'arn:aws:execute-api:eu-west-1:111111111111:abc/$default/GET/orders', headers: {} });
        process.stdout.write(JSON.stringify({ rest, http }));`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        env: { PATH: process.env.PATH, ISSUER: 'https://example.eu.auth0.com/', AUDIENCE: 'https://api.example.com', POWERTOOLS_LOG_LEVEL: 'ERROR', LOG_LEVEL: 'ERROR' },
      });
      expect(JSON.parse(stdout)).toEqual({ rest: 'Unauthorized', http: { isAuthorized: false, context: {} } });
    },
    300_000, // a hang detector: 123 s on a loaded 2-core machine
  );
});
