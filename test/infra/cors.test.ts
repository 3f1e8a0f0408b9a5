/**
 * CORS and the gateway responses in the synthesized stack: the origins reach every function
 * and every gateway response, invalid origins are refused at synth, and each gateway
 * response's problem type is the catalogue's, with its status and title.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_BASE, PROBLEM_TYPES, type ProblemSlug } from '../../packages/cdk/src/contract/problem-types.js';
import { buildLatchkeyApp, configFromContext } from '../../infra/latchkey-app.js';
import { readStack } from '../../infra/local/cloud-assembly.js';

type Json = Record<string, unknown>;
/** A synth with cdk-nag takes seconds, more on a loaded 2-core machine; nothing here is timed. */
const SYNTH_TIMEOUT_MS = 120_000;

function template(context: Record<string, unknown> = {}, outdir?: string): Template {
  const app = new App({ ...(outdir ? { outdir } : {}), context: { 'aws:cdk:bundling-stacks': [], 'latchkey:example': 'false', ...context } });
  const built = buildLatchkeyApp(app, configFromContext(app.node));
  if (outdir) app.synth();
  return Template.fromStack(built.latchkey);
}

const gatewayResponses = (t: Template) =>
  Object.values(t.findResources('AWS::ApiGateway::GatewayResponse')).map((r) => r.Properties as { ResponseType: string; StatusCode?: string; ResponseParameters: Record<string, string>; ResponseTemplates: Record<string, string> });

const environments = (t: Template) =>
  Object.entries(t.findResources('AWS::Lambda::Function')).map(([id, f]) => ({ id, env: (((f.Properties as Json).Environment as Json | undefined)?.Variables ?? {}) as Record<string, unknown> }));

const managementFunctions = (t: Template) => environments(t).filter((f) => /^(Tenants|Users|Public)Function/.test(f.id));

describe('CORS in the stack', () => {
  it('adds no CORS header anywhere when no origin is configured', () => {
    const t = template();
    for (const r of gatewayResponses(t)) expect(Object.keys(r.ResponseParameters).filter((k) => /Access-Control/i.test(k)), r.ResponseType).toEqual([]);
    for (const f of managementFunctions(t)) expect(f.env.ALLOWED_ORIGINS, f.id).toBeUndefined();
  }, SYNTH_TIMEOUT_MS);

  it('names a single origin in every gateway response and gives it to the three functions', () => {
    const t = template({ 'latchkey:allowedOrigins': 'https://app.example.com/' });
    const responses = gatewayResponses(t);
    expect(responses.length).toBeGreaterThanOrEqual(12);
    for (const r of responses) {
      expect(r.ResponseParameters['gatewayresponse.header.Access-Control-Allow-Origin'], r.ResponseType).toBe("'https://app.example.com'");
      expect(r.ResponseParameters['gatewayresponse.header.Vary'], r.ResponseType).toBe("'Origin'");
      expect(r.ResponseParameters['gatewayresponse.header.Access-Control-Expose-Headers'], r.ResponseType).toContain('Retry-After');
    }
    const fns = managementFunctions(t);
    expect(fns).toHaveLength(3);
    for (const f of fns) expect(f.env.ALLOWED_ORIGINS, f.id).toBe('https://app.example.com');
    // The authorizer never answers a browser itself: it needs no origins.
    expect(environments(t).find((f) => f.id.startsWith('AuthorizerFunction'))?.env.ALLOWED_ORIGINS).toBeUndefined();
  }, SYNTH_TIMEOUT_MS);

  it('echoes the Origin in gateway responses when several origins are configured (a JSON array works too), as the local gateway reads it', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'latchkey-cors-'));
    const t = template({ 'latchkey:allowedOrigins': '["https://a.example.com","http://localhost:5173"]' }, outdir);
    for (const r of gatewayResponses(t)) expect(r.ResponseParameters['gatewayresponse.header.Access-Control-Allow-Origin']).toBe('method.request.header.Origin');
    for (const f of managementFunctions(t)) expect(f.env.ALLOWED_ORIGINS).toBe('https://a.example.com,http://localhost:5173');
    // The local gateway copies the request's Origin, and keeps static values static.
    const local = readStack(outdir, 'Latchkey').restApis[0]!.gatewayResponses.get('UNAUTHORIZED')!;
    expect(local.requestHeaders).toEqual({ 'Access-Control-Allow-Origin': 'Origin' });
    expect(local.headers).toMatchObject({ Vary: 'Origin', 'Content-Type': 'application/problem+json' });
    expect(local.headers).not.toHaveProperty('Access-Control-Allow-Origin');
  }, SYNTH_TIMEOUT_MS);

  it.each(['*', 'https://app.example.com/path', 'app.example.com', 'null', 'ftp://files.example.com', "https://x.example.com'"])('refuses %s as an origin at synth', (origin) => {
    expect(() => template({ 'latchkey:allowedOrigins': origin })).toThrow(/not an origin/);
  });
});

describe('gateway responses', () => {
  let byType: Map<string, ReturnType<typeof gatewayResponses>[number]>;
  beforeAll(() => {
    byType = new Map(gatewayResponses(template({ 'latchkey:allowedOrigins': 'https://app.example.com' })).map((r) => [r.ResponseType, r]));
  }, SYNTH_TIMEOUT_MS);

  it.each([
    ['MISSING_AUTHENTICATION_TOKEN', '404', 'not-found'],
    ['RESOURCE_NOT_FOUND', '404', 'not-found'],
    ['REQUEST_TOO_LARGE', '413', 'payload-too-large'],
    ['THROTTLED', '429', 'too-many-requests'],
    ['QUOTA_EXCEEDED', '429', 'too-many-requests'],
    ['INVALID_API_KEY', '403', 'forbidden'],
    ['UNAUTHORIZED', '401', 'unauthorized'],
    ['AUTHORIZER_FAILURE', '503', 'unavailable'],
  ])('answers %s with %s %s as problem+json', (type, status, slug) => {
    const r = byType.get(type)!;
    expect(r.StatusCode).toBe(status);
    expect(r.ResponseParameters['gatewayresponse.header.Content-Type']).toBe("'application/problem+json'");
    expect(r.ResponseTemplates['application/json']).toContain(`"type":"${PROBLEM_BASE}${slug}"`);
  });

  it('uses only the catalogue\'s problem types, with its status and title', () => {
    for (const r of byType.values()) {
      const body = r.ResponseTemplates['application/json']!;
      const slug = /"type":"https:\/\/latchkey\.dev\/problems\/([a-z-]+)"/.exec(body)?.[1] as ProblemSlug | undefined;
      expect(slug, r.ResponseType).toBeDefined();
      const p = PROBLEM_TYPES[slug!];
      expect(p, `${r.ResponseType} ${slug}`).toBeDefined();
      expect(body, r.ResponseType).toContain(`"title":"${p.title}"`);
      if (typeof p.status === 'number') {
        expect(r.StatusCode, r.ResponseType).toBe(String(p.status));
        expect(body, r.ResponseType).toContain(`"status":${p.status}`);
      }
    }
  });
});
