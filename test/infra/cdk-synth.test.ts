/**
 * The real CLI, offline: `cdk synth` runs `infra/app.ts` through `cdk.json`, bundles the three
 * functions with the local esbuild and runs cdk-nag. Runs only once all handler entries exist.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRIES = ['functions/authorizer/handler.ts', 'functions/tenants/handler.ts', 'functions/users/handler.ts'];
const haveEntries = ENTRIES.every((e) => existsSync(join(ROOT, e)));

const outdir = mkdtempSync(join(tmpdir(), 'latchkey-synth-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

interface Template {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> }>;
}

describe('cdk synth (CLI, offline)', () => {
  it.runIf(haveEntries)(
    'synthesizes both stacks and bundles each function as minified ESM with a source map',
    async () => {
      await promisify(execFile)('npx', ['cdk', 'synth', '--no-notices', '-q', '-o', outdir], {
        cwd: ROOT,
        env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true', CDK_DISABLE_VERSION_CHECK: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
        maxBuffer: 16 * 1024 * 1024,
      });

      const template = JSON.parse(readFileSync(join(outdir, 'Latchkey.template.json'), 'utf8')) as Template;
      expect(existsSync(join(outdir, 'LatchkeyExample.template.json'))).toBe(true);
      const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
      expect(functions).toHaveLength(3);
      for (const fn of functions) {
        expect(fn.Properties?.Handler).toBe('index.handler');
        const asset = join(outdir, String(fn.Metadata?.['aws:asset:path']));
        expect(readdirSync(asset).sort()).toEqual(['index.mjs', 'index.mjs.map']);
        const code = readFileSync(join(asset, 'index.mjs'), 'utf8');
        expect(code.startsWith("import { createRequire as __latchkeyCreateRequire } from 'node:module';")).toBe(true);
        expect(code).toMatch(/export\s*\{[^}]*\bas handler\b|export\s*\{\s*handler\s*\}/);
        expect(code.length / code.split('\n').length).toBeGreaterThan(1000); // minified
      }

      // The authorizer bundle loads as ESM on Node and answers a request without credentials.
      const authorizer = functions.find((f) => (f.Properties?.Environment as { Variables?: Record<string, unknown> })?.Variables?.POWERTOOLS_SERVICE_NAME === 'latchkey-authorizer')!;
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
    180_000,
  );
});
