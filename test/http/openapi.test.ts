/**
 * The OpenAPI document: committed and current, lint-clean by Redocly's recommended rules, the
 * same routes as the synthesized REST API, and request schemas that accept and refuse what the
 * handlers' zod schemas accept and refuse.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument, problemSchemaName, renderOpenApiDocument } from '../../functions/http/openapi.js';
import { PROBLEM_TYPES, problemTypesMarkdown, problemTypeUri, type ProblemSlug } from '../../packages/cdk/src/contract/problem-types.js';
import * as tenants from '../../functions/tenants/routes.js';
import * as users from '../../functions/users/routes.js';
import { readStack } from '../../infra/local/cloud-assembly.js';
import { ROOT } from '../../infra/local/local-stack.js';
import { buildLatchkeyApp, configFromContext } from '../../infra/latchkey-app.js';
import { OPENAPI_DOCUMENT, schemaErrors } from '../support/openapi.js';

type Json = Record<string, unknown>;
const doc = buildOpenApiDocument() as Json & { paths: Record<string, Record<string, Json>>; components: Record<string, Record<string, Json>> };
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('the OpenAPI document', () => {
  it('is committed as generated (run `npm run openapi` after changing a schema or a route)', () => {
    expect(readFileSync(join(ROOT, 'openapi.json'), 'utf8')).toBe(renderOpenApiDocument());
  });

  it('lints clean with Redocly\'s recommended rules, no warnings', async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: renderOpenApiDocument(), absoluteRef: join(ROOT, 'openapi.json'), config });
    expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ''}`)).toEqual([]);
  });

  it('has the routes of the synthesized REST API, each other method of a route answered by the public function', () => {
    const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'latchkey-openapi-')), context: { 'aws:cdk:bundling-stacks': [], 'latchkey:example': 'false' } });
    const built = buildLatchkeyApp(app, configFromContext(app.node));
    const assembly = app.synth();
    const api = readStack(assembly.directory, built.latchkey.stackName).restApis[0]!;
    const synthesized = api.methods.filter((m) => m.httpMethod !== 'ANY').map((m) => `${m.httpMethod} ${m.resourcePath}`);
    const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((k) => METHODS.includes(k)).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(synthesized.sort());
    const withAny = api.methods.filter((m) => m.httpMethod === 'ANY').map((m) => m.resourcePath);
    expect(withAny.sort()).toEqual(Object.keys(doc.paths).sort());
    const publicFn = api.methods.find((m) => m.resourcePath === '/openapi.json' && m.httpMethod === 'GET')!.integration.functionLogicalId;
    for (const m of api.methods.filter((x) => x.httpMethod === 'ANY')) {
      expect(m.authorizationType, m.resourcePath).toBe('NONE');
      expect(m.integration.functionLogicalId, m.resourcePath).toBe(publicFn);
    }
    // A synth with cdk-nag takes 5-20 s on a loaded 2-core machine.
  }, 120_000);

  it('describes every problem type as a schema with its type URI and status', () => {
    for (const [slug, p] of Object.entries(PROBLEM_TYPES) as [ProblemSlug, (typeof PROBLEM_TYPES)[ProblemSlug]][]) {
      const ref = `#/components/schemas/${problemSchemaName(slug)}`;
      const body = { type: problemTypeUri(slug), title: p.title, status: typeof p.status === 'number' ? p.status : p.status === '4XX' ? 418 : 502 };
      expect(schemaErrors(ref, body), slug).toEqual([]);
      expect(schemaErrors(ref, { ...body, type: problemTypeUri(slug === 'conflict' ? 'forbidden' : 'conflict') }), slug).not.toEqual([]);
      if (typeof p.status === 'number') expect(schemaErrors(ref, { ...body, status: p.status + 1 }), slug).not.toEqual([]);
    }
  });

  it('names the three security schemes, requires them on every route but /openapi.json, and offers Idempotency-Key on every POST', () => {
    expect(Object.keys(doc.components.securitySchemes!).sort()).toEqual(['apiKey', 'basic', 'bearer']);
    expect(doc.security).toEqual([{ bearer: [] }, { apiKey: [] }, { basic: [] }]);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (path === '/openapi.json') expect(op.security).toEqual([]);
        else expect(op.security, `${method} ${path}`).toBeUndefined();
        const params = (op.parameters as Json[] | undefined) ?? [];
        expect(params.some((p) => p.$ref === '#/components/parameters/IdempotencyKey'), `${method} ${path}`).toBe(method === 'post');
        const responses = op.responses as Json;
        if (path !== '/openapi.json') for (const s of ['401', '403', '429', '503', '4XX', '5XX']) expect(responses[s], `${method} ${path} ${s}`).toBeDefined();
      }
    }
  });

  it('documents both kinds of pagination', () => {
    const names = (op: Json) => ((op.parameters as Json[]) ?? []).map((p) => p.name);
    expect(names(doc.paths['/tenants']!.get!)).toEqual(expect.arrayContaining(['limit', 'cursor']));
    expect(names(doc.paths['/users']!.get!)).toEqual(expect.arrayContaining(['page', 'per_page', 'email', 'tenantId']));
    expect(schemaErrors('#/components/schemas/TenantList', { items: [], nextCursor: null })).toEqual([]);
    expect(schemaErrors('#/components/schemas/TenantList', { items: [] })).not.toEqual([]);
  });

  it.each<[string, { safeParse(v: unknown): { success: boolean } }, unknown[]]>([
    ['CreateTenant', tenants.createTenantBody, [{ tenantId: 'acme', name: 'Acme' }, { tenantId: 'acme' }, { tenantId: '-acme', name: 'A' }, { tenantId: 'acme', name: 'A', extra: 1 }, { tenantId: 'a'.repeat(65), name: 'A' }, 'acme']],
    ['CreateApiKey', tenants.createKeyBody, [{ name: 'k' }, { name: 'k', scopes: ['users:read'] }, { name: 'k', scopes: ['bad scope'] }, { scopes: [] }, { name: 'k', scopes: Array(51).fill('a') }]],
    ['CreateUser', users.createUserBody, [{ email: 'a@b.test' }, { email: 'not-an-email' }, { email: 'a@b.test', roles: ['tenant:admin'] }, { email: 'a@b.test', roles: ['platform:admin'] }, { email: 'a@b.test', password: 'short' }, { email: 'a@b.test', tenantId: 'x' }]],
    ['PatchUser', users.patchUserBody, [{ name: 'N' }, { blocked: 'yes' }, { roles: ['tenant:member'] }, { app_metadata: {} }]],
  ])('%s in the document accepts and refuses what the handler\'s zod schema does', (name, schema, samples) => {
    for (const sample of samples) {
      expect(schemaErrors(`#/components/schemas/${name}`, sample).length === 0, JSON.stringify(sample)).toBe(schema.safeParse(sample).success);
    }
  });

  it('goes with a README whose problem-type table is the catalogue\'s (run `npm run openapi`)', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const table = /<!-- problem-types:start -->\n([\s\S]*?)\n<!-- problem-types:end -->/.exec(readme)?.[1];
    expect(table).toBe(problemTypesMarkdown());
    for (const slug of Object.keys(PROBLEM_TYPES)) expect(table).toContain(`| \`${slug}\` |`);
  });

  it('is the document the tests validate answers against', () => {
    expect(OPENAPI_DOCUMENT).toEqual(JSON.parse(renderOpenApiDocument()));
  });
});
