/**
 * Builds the Latchkey CDK app from context, so `infra/app.ts` and the tests assemble the same
 * thing. Context keys (`cdk synth -c latchkey:issuer=https://tenant.eu.auth0.com/`, or the
 * `context` block of `cdk.json`):
 *
 * | key | meaning | default |
 * |---|---|---|
 * | `latchkey:issuer` | exact `iss` of accepted tokens | `https://example.eu.auth0.com/` |
 * | `latchkey:audience` | accepted audiences, comma-separated or a JSON array | `https://api.example.com` |
 * | `latchkey:tenantClaim` | namespaced tenant-id claim | `https://latchkey.dev/tenant_id` |
 * | `latchkey:rolesClaim` | namespaced roles claim | `https://latchkey.dev/roles` |
 * | `latchkey:algorithms` | JWS algorithms, comma-separated or a JSON array | `RS256` |
 * | `latchkey:acceptApiKeyHeader` | accept `X-Api-Key` (turns API Gateway's authorizer cache off) | `true` |
 * | `latchkey:resultsCacheTtlSeconds` | authorizer cache TTL, only with `acceptApiKeyHeader=false`; TTL + revocationCheckSeconds ≤ 60 | 30 / 0 |
 * | `latchkey:revocationCheckSeconds` | how long the authorizer trusts a cached API key before re-reading its revocation state, 0–60 | `30` |
 * | `latchkey:stageName` | REST API stage | `v1` |
 * | `latchkey:managementSecretName` | existing `{domain, clientId, clientSecret}` secret | a new `<stack>/auth0-management-<creation id>` |
 * | `latchkey:managementSecretKeyArn` | customer-managed KMS key of the management secret | `aws/secretsmanager` |
 * | `latchkey:allowInvokeFrom` | other accounts' APIs that may invoke the authorizer: `account` or `account/apiId`, comma-separated | none |
 * | `latchkey:auditRetentionDays` | how long audit events are kept (DynamoDB TTL), 1–3650 days | `400` |
 * | `latchkey:stackName` | name of the stack (the example is `<name>Example`); two names, two independent copies | `Latchkey` |
 * | `latchkey:example` | also synthesize `<stackName>Example` (authorizer on two more APIs) | `true` |
 * | `latchkey:allowedOrigins` | browser origins allowed by CORS, comma-separated or a JSON array | none |
 * | `latchkey:usagePlans` | usage plans as JSON `{"free":{"rateLimit":5,"burstLimit":10,"quota":{"limit":10000,"period":"DAY"}},…,"platform":{…}}` | `DEFAULT_USAGE_PLANS` |
 * | `latchkey:defaultUsagePlan` | plan of tenants created without one | `free` |
 * | `latchkey:usageFlushSeconds`, `latchkey:usageFlushRequests` | how often the authorizer writes usage counts | `60`, `1000` |
 */
import { Aspects, Duration, type App, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Node } from 'constructs';
import { ExampleAttachStack } from './example-attach-stack.js';
import { LatchkeyStack, type UsagePlanLimits } from './latchkey-stack.js';

export const DEFAULT_ISSUER = 'https://example.eu.auth0.com/';
export const DEFAULT_AUDIENCE = 'https://api.example.com';

export interface LatchkeyAppConfig {
  issuer: string;
  audiences: string[];
  tenantClaim: string | undefined;
  rolesClaim: string | undefined;
  algorithms: string[] | undefined;
  acceptApiKeyHeader: boolean;
  resultsCacheTtlSeconds: number | undefined;
  revocationCheckSeconds: number | undefined;
  stageName: string | undefined;
  managementSecretName: string | undefined;
  managementSecretKeyArn: string | undefined;
  allowInvokeFrom: { account: string; apiId?: string }[];
  auditRetentionDays: number | undefined;
  stackName: string;
  allowedOrigins: string[] | undefined;
  example: boolean;
  usagePlans: Record<string, UsagePlanLimits> | undefined;
  defaultUsagePlan: string | undefined;
  usageFlushSeconds: number | undefined;
  usageFlushRequests: number | undefined;
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

function usagePlans(node: Node): Record<string, UsagePlanLimits> | undefined {
  const v: unknown = node.tryGetContext('latchkey:usagePlans');
  if (v === undefined || v === null || v === '') return undefined;
  const parsed: unknown = typeof v === 'string' ? JSON.parse(v) : v;
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('context latchkey:usagePlans must be a JSON object of plans');
  const nonNegative = (x: unknown, what: string) => {
    if (typeof x !== 'number' || !(x >= 0)) throw new Error(`context latchkey:usagePlans: ${what} must be a number ≥ 0`);
    return x;
  };
  return Object.fromEntries(
    Object.entries(parsed as Record<string, Record<string, unknown>>).map(([name, p]) => {
      const quota = p.quota as { limit?: unknown; period?: unknown } | undefined;
      if (quota && !['DAY', 'WEEK', 'MONTH'].includes(String(quota.period))) throw new Error(`context latchkey:usagePlans: ${name}.quota.period must be DAY, WEEK or MONTH`);
      return [
        name,
        {
          rateLimit: nonNegative(p.rateLimit, `${name}.rateLimit`),
          burstLimit: nonNegative(p.burstLimit, `${name}.burstLimit`),
          ...(quota ? { quota: { limit: nonNegative(quota.limit, `${name}.quota.limit`), period: quota.period as 'DAY' | 'WEEK' | 'MONTH' } } : {}),
        },
      ];
    }),
  );
}

/** Reads `latchkey:*` context, with placeholders that let `cdk synth` run with none given. */
export function configFromContext(node: Node): LatchkeyAppConfig {
  const issuer = text(node, 'issuer') ?? DEFAULT_ISSUER;
  return {
    issuer,
    audiences: list(node, 'audience') ?? [DEFAULT_AUDIENCE],
    tenantClaim: text(node, 'tenantClaim'),
    rolesClaim: text(node, 'rolesClaim'),
    algorithms: list(node, 'algorithms'),
    acceptApiKeyHeader: bool(node, 'acceptApiKeyHeader', true),
    resultsCacheTtlSeconds: int(node, 'resultsCacheTtlSeconds'),
    revocationCheckSeconds: int(node, 'revocationCheckSeconds'),
    stageName: text(node, 'stageName'),
    managementSecretName: text(node, 'managementSecretName'),
    managementSecretKeyArn: text(node, 'managementSecretKeyArn'),
    allowInvokeFrom: (list(node, 'allowInvokeFrom') ?? []).map((entry) => {
      const [account, apiId, ...rest] = entry.split('/');
      if (rest.length > 0 || !account) throw new Error(`context latchkey:allowInvokeFrom takes account or account/apiId entries, got "${entry}"`);
      return apiId === undefined ? { account } : { account, apiId };
    }),
    auditRetentionDays: int(node, 'auditRetentionDays'),
    stackName: text(node, 'stackName') ?? 'Latchkey',
    allowedOrigins: list(node, 'allowedOrigins'),
    example: bool(node, 'example', true),
    usagePlans: usagePlans(node),
    defaultUsagePlan: text(node, 'defaultUsagePlan'),
    usageFlushSeconds: int(node, 'usageFlushSeconds'),
    usageFlushRequests: int(node, 'usageFlushRequests'),
  };
}

export interface LatchkeyApp {
  latchkey: LatchkeyStack;
  example: ExampleAttachStack | undefined;
}

/** Adds the Latchkey stacks (and the example, unless disabled) to `app`, checked by cdk-nag. */
export function buildLatchkeyApp(app: App, config: LatchkeyAppConfig, env?: Environment): LatchkeyApp {
  const latchkey = new LatchkeyStack(app, config.stackName, {
    env,
    description: 'Latchkey: multi-tenant API authorizer and tenant/user management',
    issuer: config.issuer,
    audiences: config.audiences,
    tenantClaim: config.tenantClaim,
    rolesClaim: config.rolesClaim,
    algorithms: config.algorithms,
    acceptApiKeyHeader: config.acceptApiKeyHeader,
    resultsCacheTtl: config.resultsCacheTtlSeconds === undefined ? undefined : Duration.seconds(config.resultsCacheTtlSeconds),
    revocationCheckInterval: config.revocationCheckSeconds === undefined ? undefined : Duration.seconds(config.revocationCheckSeconds),
    stageName: config.stageName,
    managementSecretName: config.managementSecretName,
    managementSecretKeyArn: config.managementSecretKeyArn,
    allowInvokeFrom: config.allowInvokeFrom,
    allowedOrigins: config.allowedOrigins,
    usagePlans: config.usagePlans,
    defaultUsagePlan: config.defaultUsagePlan,
    usageFlush: {
      ...(config.usageFlushSeconds !== undefined ? { interval: Duration.seconds(config.usageFlushSeconds) } : {}),
      ...(config.usageFlushRequests !== undefined ? { requests: config.usageFlushRequests } : {}),
    },
    auditRetentionDays: config.auditRetentionDays,
  });
  let example: ExampleAttachStack | undefined;
  if (config.example) {
    // The example finds the authorizer through SSM parameters read at its own deployment, not a
    // CloudFormation export, so the Latchkey stack can be updated or redeployed without it. The
    // dependency only orders `cdk deploy --all`.
    example = new ExampleAttachStack(app, `${config.stackName}Example`, {
      env,
      description: 'Latchkey example: the shared authorizer attached to a REST API and an HTTP API',
      latchkeyStackName: latchkey.stackName,
    });
    example.addStackDependency(latchkey);
  }
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return { latchkey, example };
}
