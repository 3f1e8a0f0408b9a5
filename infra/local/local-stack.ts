/**
 * The whole API on this machine: `cdk synth` of the real stack, DynamoDB Local with the
 * stack's tables, the local identity provider (oidc-provider) in Auth0's role, the bundled
 * Lambda code from the cloud assembly, and a local API Gateway serving the synthesized REST API.
 *
 * Function environments are the template's, with references resolved to the local resources.
 * The one deliberate difference: functions that talk to the identity provider's management API
 * (`IDP=auth0` + a Secrets Manager secret in the template) are pointed at the local provider
 * (`IDP=local`), since no Auth0 tenant or Secrets Manager runs here.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { readStack, type StackModel } from './cloud-assembly.js';
import { startDynamoDbLocal, type DynamoDbLocal } from './dynamodb-local.js';
import { freePort } from './free-port.js';
import { ROLE_GRANTS } from '../../functions/core/permissions.js';
import { startLocalIdentityProvider, type LocalIdentityProvider } from './identity-provider.js';
import { LambdaPool } from './lambda-pool.js';
import { startRestGateway, type RestGateway } from './rest-gateway.js';
import { startSpaServer, type SpaServer } from './spa.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LOCAL_AUDIENCE = 'https://api.latchkey.local';
const STACK = 'Latchkey';

export interface LocalStackOptions {
  /** Port of the API (0: a free one). */
  apiPort?: number;
  /** Port of the identity provider (0: a free one). The issuer is baked into the synthesized template. */
  idpPort?: number;
  dynamoPort?: number;
  /** Port of the browser SPA (0: a free one); its origin is the local default of `allowedOrigins`. */
  spaPort?: number;
  /** Where `cdk synth` writes the assembly. */
  assemblyDir?: string;
  /** Extra `latchkey:*` context for the synth, e.g. `{ revocationCheckSeconds: '2' }`. */
  context?: Record<string, string>;
  /** Containers per function. */
  maxConcurrency?: number;
  /** How long to wait for DynamoDB Local to answer (default `readyTimeoutMs()`). */
  readyTimeoutMs?: number;
  /** Clock of the gateway's usage-plan throttles and quotas (epoch ms); tests step it. @default Date.now */
  gatewayNow?: () => number;
  /** Aborting it during the start stops what was started (children included) and rejects. */
  signal?: AbortSignal;
  log?: (source: string, line: string) => void;
}

export interface LocalStack {
  apiUrl: string;
  gateway: RestGateway;
  idp: LocalIdentityProvider;
  dynamo: DynamoDbLocal;
  /** The SPA on its own origin (`http://localhost:<port>`), allowed by the API's CORS. */
  spa: SpaServer;
  model: StackModel;
  pools: Map<string, LambdaPool>;
  stop(): Promise<void>;
}

/** Runs the real CDK CLI offline; resolves with the assembly directory. */
export async function synthesize(outDir: string, context: Record<string, string>, log?: (line: string) => void, signal?: AbortSignal): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  const cli = createRequire(import.meta.url).resolve('aws-cdk/bin/cdk');
  const args = [cli, 'synth', STACK, '--no-notices', '-q', '-o', outDir, ...Object.entries(context).flatMap(([k, v]) => ['-c', `latchkey:${k}=${v}`])];
  await new Promise<void>((ok, fail) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true', CDK_DISABLE_VERSION_CHECK: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Aborting kills the CLI (and so its bundling): no synth outlives a stopped start.
      ...(signal ? { signal, killSignal: 'SIGKILL' as const } : {}),
    });
    let output = '';
    const collect = (c: Buffer) => {
      output += c.toString();
      for (const line of c.toString().split('\n')) if (line.trim()) log?.(line);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`cdk synth failed (exit ${code}):\n${output.slice(-4000)}`))));
  });
  return outDir;
}

/** Creates the template's tables in DynamoDB Local, named by their logical ids. */
export async function createTables(model: StackModel, endpoint: string): Promise<void> {
  const db = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    for (const t of model.tables.values()) {
      const p = t.properties as Record<string, unknown>;
      const input: CreateTableCommandInput = {
        TableName: t.logicalId,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: p.AttributeDefinitions as CreateTableCommandInput['AttributeDefinitions'],
        KeySchema: p.KeySchema as CreateTableCommandInput['KeySchema'],
        ...(p.GlobalSecondaryIndexes ? { GlobalSecondaryIndexes: p.GlobalSecondaryIndexes as CreateTableCommandInput['GlobalSecondaryIndexes'] } : {}),
      };
      await db.send(new CreateTableCommand(input));
      const ttl = p.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
      if (ttl?.Enabled && ttl.AttributeName) {
        await db.send(new UpdateTimeToLiveCommand({ TableName: t.logicalId, TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true } }));
      }
    }
  } finally {
    db.destroy();
  }
}

/**
 * Resolves a template value to what it is locally: tables by logical id, the API by its local
 * id, `Fn::Join`s of resolvable parts, and dynamic references to a secret
 * (`{{resolve:secretsmanager:<secret>:SecretString:::}}`) by the value generated for it at this start.
 */
function resolveValue(v: unknown, model: StackModel, apiId: string, secrets: Map<string, string>): string | undefined {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
    const text = String(v);
    const dynamic = /^\{\{resolve:secretsmanager:([^:}]+):SecretString:[^}]*\}\}$/.exec(text);
    return dynamic ? secrets.get(dynamic[1]!) : text;
  }
  if (v && typeof v === 'object' && 'Fn::Join' in v) {
    const [sep, parts] = (v as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    const resolved = parts.map((p) => (p && typeof p === 'object' && 'Ref' in p && secrets.has(String((p as { Ref: unknown }).Ref)) ? String((p as { Ref: unknown }).Ref) : resolveValue(p, model, apiId, secrets)));
    return resolved.some((p) => p === undefined) ? undefined : resolveValue(resolved.join(sep), model, apiId, secrets);
  }
  const ref = v && typeof v === 'object' && 'Ref' in v ? String((v as { Ref: unknown }).Ref) : undefined;
  if (ref && model.tables.has(ref)) return ref;
  if (ref && model.restApis.some((a) => a.logicalId === ref)) return apiId;
  return undefined;
}

export async function startLocalStack(o: LocalStackOptions = {}): Promise<LocalStack> {
  const log = o.log ?? (() => undefined);
  const stoppers: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stoppers.splice(0).reverse()) await s().catch(() => undefined);
  };
  const checkpoint = () => o.signal?.throwIfAborted();
  try {
    const spa = await startSpaServer(o.spaPort ?? 0);
    stoppers.push(() => spa.close());
    checkpoint();
    // The SPA's redirect URI is registered with the provider, whose origin must be known first.
    const idpPort = o.idpPort && o.idpPort > 0 ? o.idpPort : await freePort();
    const [dynamo, idp] = await Promise.allSettled([
      startDynamoDbLocal({ port: o.dynamoPort ?? 0, ...(o.readyTimeoutMs ? { startTimeoutMs: o.readyTimeoutMs } : {}) }),
      startLocalIdentityProvider({ port: idpPort, audience: LOCAL_AUDIENCE, rolePermissions: ROLE_GRANTS, spaRedirectUris: [`http://127.0.0.1:${idpPort}/callback`, `${spa.origin}/`] }),
    ]).then(([d, i]) => {
      // Whichever started is stopped if the other failed.
      if (d.status === 'fulfilled') stoppers.push(() => d.value.stop());
      if (i.status === 'fulfilled') stoppers.push(() => i.value.stop());
      if (d.status === 'rejected') throw d.reason;
      if (i.status === 'rejected') throw i.reason;
      return [d.value, i.value] as const;
    });
    checkpoint();

    const assemblyDir = o.assemblyDir ?? join(ROOT, '.local', 'cdk.out');
    log('synth', `cdk synth → ${assemblyDir}`);
    await synthesize(assemblyDir, { issuer: idp.issuer, audience: LOCAL_AUDIENCE, example: 'false', allowedOrigins: spa.origin, ...o.context }, (l) => log('synth', l), o.signal);
    checkpoint();
    const model = readStack(assemblyDir, STACK);
    await createTables(model, dynamo.endpoint);
    checkpoint();

    const api = model.restApis[0];
    if (!api) throw new Error('the synthesized stack has no REST API');
    const apiId = 'local';
    const apiPort = o.apiPort && o.apiPort > 0 ? o.apiPort : await freePort();
    const baseEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_API_GATEWAY: `http://127.0.0.1:${apiPort}`,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    // Generated secrets (the usage-key derivation secret, the platform key's value) get a fresh
    // value per start, alphanumeric and 64 characters as the template generates them (excludePunctuation).
    const secrets = new Map(model.secrets.map((id) => [id, randomBytes(32).toString('hex')]));
    const pools = new Map<string, LambdaPool>();
    for (const fn of model.functions.values()) {
      const env: Record<string, string> = { ...baseEnv };
      for (const [k, v] of Object.entries(fn.environment)) {
        const resolved = resolveValue(v, model, apiId, secrets);
        if (resolved === undefined) log('local', `${fn.logicalId}: ${k} has no local value; left unset`);
        else env[k] = resolved;
      }
      if (env.IDP !== undefined) {
        env.IDP = 'local';
        env.LOCAL_IDP_URL = idp.origin;
        env.LOCAL_IDP_ADMIN_TOKEN = idp.adminToken;
        env.LOCAL_IDP_REGISTRATION_TOKEN = idp.initialAccessToken;
        delete env.AUTH0_SECRET_ID;
      }
      const name = fn.logicalId.replace(/[0-9A-F]{8}$/, '');
      pools.set(fn.logicalId, new LambdaPool({ fn, name, env, maxConcurrency: o.maxConcurrency ?? 2, onLog: (line) => log(name, line) }));
    }
    stoppers.push(() => Promise.all([...pools.values()].map((p) => p.close())));

    const gateway = await startRestGateway({
      api,
      apiId,
      pools,
      port: apiPort,
      resolveValue: (v) => resolveValue(v, model, apiId, secrets),
      ...(o.gatewayNow ? { now: o.gatewayNow } : {}),
      onAccessLog: (entry) => log('api', JSON.stringify(entry)),
    });
    stoppers.push(() => gateway.close());
    spa.configure({ api: gateway.url, issuer: idp.issuer, clientId: idp.spaClientId, audience: LOCAL_AUDIENCE });
    checkpoint();
    return { apiUrl: gateway.url, gateway, idp, dynamo, spa, model, pools, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
