/**
 * Builds the Latchkey CDK app from context, so `infra/app.ts` and the tests assemble the same
 * thing. Context keys (`cdk synth -c latchkey:issuer=https://tenant.eu.auth0.com/`, or the
 * `context` block of `cdk.json`):
 *
 * | key | meaning | default |
 * |---|---|---|
 * | `latchkey:issuer` | exact `iss` of accepted tokens | `https://example.eu.auth0.com/` |
 * | `latchkey:audience` | accepted audiences, comma-separated or a JSON array | `https://api.example.com` |
 * | `latchkey:auth0Domain` | Auth0 tenant domain for the Management API | host of the issuer |
 * | `latchkey:tenantClaim` | namespaced tenant-id claim | `https://latchkey.dev/tenant_id` |
 * | `latchkey:rolesClaim` | namespaced roles claim | `https://latchkey.dev/roles` |
 * | `latchkey:algorithms` | JWS algorithms, comma-separated or a JSON array | `RS256` |
 * | `latchkey:acceptApiKeyHeader` | accept `X-Api-Key` (turns API Gateway's authorizer cache off) | `true` |
 * | `latchkey:resultsCacheTtlSeconds` | authorizer cache TTL, 0–60, only with `acceptApiKeyHeader=false` | 30 / 0 |
 * | `latchkey:revocationCheckSeconds` | how long the authorizer trusts a cached API key before re-reading its revocation state, 0–60 | `30` |
 * | `latchkey:stageName` | REST API stage | `v1` |
 * | `latchkey:managementSecretName` | existing `{domain, clientId, clientSecret}` secret | a new `latchkey/auth0-management` |
 * | `latchkey:allowedOrigins` | browser origins allowed by CORS, comma-separated or a JSON array | none |
 * | `latchkey:example` | also synthesize `LatchkeyExample` (authorizer on two more APIs) | `true` |
 */
import { Aspects, Duration, type App, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Node } from 'constructs';
import { ExampleAttachStack } from './example-attach-stack.js';
import { LatchkeyStack } from './latchkey-stack.js';

const CROSS_STACK_REFERENCES = '@aws-cdk/core:defaultCrossStackReferences';

export const DEFAULT_ISSUER = 'https://example.eu.auth0.com/';
export const DEFAULT_AUDIENCE = 'https://api.example.com';

export interface LatchkeyAppConfig {
  issuer: string;
  audiences: string[];
  auth0Domain: string;
  tenantClaim: string | undefined;
  rolesClaim: string | undefined;
  algorithms: string[] | undefined;
  acceptApiKeyHeader: boolean;
  resultsCacheTtlSeconds: number | undefined;
  revocationCheckSeconds: number | undefined;
  stageName: string | undefined;
  managementSecretName: string | undefined;
  allowedOrigins: string[] | undefined;
  example: boolean;
}

function text(node: Node, key: string): string | undefined {
  const v: unknown = node.tryGetContext(`latchkey:${key}`);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new Error(`context latchkey:${key} must be a string`);
  const s = String(v).trim();
  return s === '' ? undefined : s;
}

function list(node: Node, key: string): string[] | undefined {
  const v: unknown = node.tryGetContext(`latchkey:${key}`);
  if (v === undefined || v === null) return undefined;
  let items: unknown[];
  if (Array.isArray(v)) items = v;
  else if (typeof v === 'string') items = v.trim().startsWith('[') ? (JSON.parse(v) as unknown[]) : v.split(',');
  else throw new Error(`context latchkey:${key} must be a comma-separated string or an array`);
  const out = items.map((i) => String(i).trim()).filter((i) => i.length > 0);
  return out.length > 0 ? out : undefined;
}

function bool(node: Node, key: string, dflt: boolean): boolean {
  const v = text(node, key);
  if (v === undefined) return dflt;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new Error(`context latchkey:${key} must be true or false, got "${v}"`);
}

function int(node: Node, key: string): number | undefined {
  const v = text(node, key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`context latchkey:${key} must be a whole number, got "${v}"`);
  return Number(v);
}

/** Reads `latchkey:*` context, with placeholders that let `cdk synth` run with none given. */
export function configFromContext(node: Node): LatchkeyAppConfig {
  const issuer = text(node, 'issuer') ?? DEFAULT_ISSUER;
  return {
    issuer,
    audiences: list(node, 'audience') ?? [DEFAULT_AUDIENCE],
    auth0Domain: text(node, 'auth0Domain') ?? new URL(issuer).host,
    tenantClaim: text(node, 'tenantClaim'),
    rolesClaim: text(node, 'rolesClaim'),
    algorithms: list(node, 'algorithms'),
    acceptApiKeyHeader: bool(node, 'acceptApiKeyHeader', true),
    resultsCacheTtlSeconds: int(node, 'resultsCacheTtlSeconds'),
    revocationCheckSeconds: int(node, 'revocationCheckSeconds'),
    stageName: text(node, 'stageName'),
    managementSecretName: text(node, 'managementSecretName'),
    allowedOrigins: list(node, 'allowedOrigins'),
    example: bool(node, 'example', true),
  };
}

export interface LatchkeyApp {
  latchkey: LatchkeyStack;
  example: ExampleAttachStack | undefined;
}

/** Adds the Latchkey stacks (and the example, unless disabled) to `app`, checked by cdk-nag. */
export function buildLatchkeyApp(app: App, config: LatchkeyAppConfig, env?: Environment): LatchkeyApp {
  // The example stack imports the authorizer's ARN. Strong references (the v2 default, made
  // explicit to silence CDK's warning) keep the Latchkey stack from being deleted under it.
  if (app.node.tryGetContext(CROSS_STACK_REFERENCES) === undefined) app.node.setContext(CROSS_STACK_REFERENCES, 'strong');
  const latchkey = new LatchkeyStack(app, 'Latchkey', {
    env,
    description: 'Latchkey: multi-tenant API authorizer and tenant/user management',
    issuer: config.issuer,
    audiences: config.audiences,
    auth0Domain: config.auth0Domain,
    tenantClaim: config.tenantClaim,
    rolesClaim: config.rolesClaim,
    algorithms: config.algorithms,
    acceptApiKeyHeader: config.acceptApiKeyHeader,
    resultsCacheTtl: config.resultsCacheTtlSeconds === undefined ? undefined : Duration.seconds(config.resultsCacheTtlSeconds),
    revocationCheckInterval: config.revocationCheckSeconds === undefined ? undefined : Duration.seconds(config.revocationCheckSeconds),
    stageName: config.stageName,
    managementSecretName: config.managementSecretName,
    allowedOrigins: config.allowedOrigins,
  });
  const example = config.example
    ? new ExampleAttachStack(app, 'LatchkeyExample', {
        env,
        description: 'Latchkey example: the shared authorizer attached to a REST API and an HTTP API',
        authorizer: latchkey.authorizer,
      })
    : undefined;
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return { latchkey, example };
}
