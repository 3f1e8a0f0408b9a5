/**
 * The Latchkey deployment: the authorizer, the management REST API (tenants, API keys, users)
 * behind it, its tables and the Auth0 Management API secret.
 */
import { Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as pipes from 'aws-cdk-lib/aws-pipes';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as triggers from 'aws-cdk-lib/triggers';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { parseAllowedOrigins } from '../functions/core/config.js';
import { PLAN_NAME_PATTERN, PLATFORM_PLAN } from '../functions/core/usage-plans.js';
import { LatchkeyAuthorizer } from '../packages/cdk/src/index.js';
import { latchkeyFunction } from '../packages/cdk/src/latchkey-function.js';
import { bundledCode } from './bundling.js';
import { suppressLatchkeyRuntime } from './nag.js';

/**
 * Names of the SSM parameters through which other stacks find this stack's authorizer, read at
 * their deployment (`ssm.StringParameter.valueForStringParameter`): unlike a CloudFormation
 * export, nothing locks this stack while they use it.
 */
export function latchkeyParameterNames(stackName: string): { authorizerFunctionArn: string; tokenCacheTableArn: string } {
  return { authorizerFunctionArn: `/${stackName}/authorizer-function-arn`, tokenCacheTableArn: `/${stackName}/token-cache-table-arn` };
}

export interface LatchkeyStackProps extends StackProps {
  /** Exact `iss` of accepted tokens, e.g. `https://tenant.eu.auth0.com/`. */
  readonly issuer: string;
  /** Accepted audiences; the first is granted to API keys' clients. */
  readonly audiences: string[];
  /**
   * Namespaced tenant-id claim.
   * @default 'https://latchkey.dev/tenant_id'
   */
  readonly tenantClaim?: string;
  /**
   * Namespaced roles claim.
   * @default 'https://latchkey.dev/roles'
   */
  readonly rolesClaim?: string;
  /**
   * Accepted JWS algorithms.
   * @default ['RS256']
   */
  readonly algorithms?: string[];
  /**
   * Name of an existing Secrets Manager secret holding `{ domain, clientId, clientSecret }`.
   * @default - a secret is created, named `<stack name>/auth0-management-<id of this stack's
   * creation>`, so two stacks in one account, or a stack created again after its retained
   * secret, never clash; write `{ domain, clientId, clientSecret }` into it after deployment
   */
  readonly managementSecretName?: string;
  /**
   * ARN of the customer-managed KMS key that encrypts the management secret: the created one is
   * encrypted with it, and the functions get `kms:Decrypt` on it through Secrets Manager.
   * @default - the AWS-managed key `aws/secretsmanager`
   */
  readonly managementSecretKeyArn?: string;
  /**
   * Stage of the REST API.
   * @default 'v1'
   */
  readonly stageName?: string;
  /**
   * See `LatchkeyAuthorizerProps.acceptApiKeyHeader`.
   * @default true
   */
  readonly acceptApiKeyHeader?: boolean;
  /**
   * See `LatchkeyAuthorizerProps.resultsCacheTtl`.
   * @default - 0 with `acceptApiKeyHeader`, else 30 s
   */
  readonly resultsCacheTtl?: Duration;
  /**
   * See `LatchkeyAuthorizerProps.revocationCheckInterval`.
   * @default Duration.seconds(30)
   */
  readonly revocationCheckInterval?: Duration;
  /**
   * Other accounts whose API Gateway APIs may invoke the authorizer (`LatchkeyAuthorizer.allowInvokeFrom`),
   * each limited to one API when `apiId` is given.
   * @default - none: only APIs in this account
   */
  readonly allowInvokeFrom?: { account: string; apiId?: string }[];
  /**
   * Browser origins (`https://app.example.com`) whose scripts may call the API: CORS headers on
   * every answer (management handlers, preflight, gateway responses) for these origins.
   * @default - none: no browser on another origin can read answers
   */
  readonly allowedOrigins?: string[];
  /**
   * Usage plans (tiers) of the REST API, by name (lower-case letters, digits, `-`): each tenant's
   * API Gateway key is attached to one of them, and `platform` (required) holds the key of callers
   * without a tenant. Names become `<stack name>-<plan>` in API Gateway.
   * @default DEFAULT_USAGE_PLANS (`free`, `standard`, `enterprise`, `platform`)
   */
  readonly usagePlans?: Record<string, UsagePlanLimits>;
  /**
   * How often each authorizer container writes its usage counts: after `interval` or `requests`
   * allowed requests, whichever comes first (`USAGE_FLUSH_S`, `USAGE_FLUSH_REQUESTS`).
   * @default - 60 s or 1,000 requests
   */
  readonly usageFlush?: { readonly interval?: Duration; readonly requests?: number };
  /**
   * Plan of tenants created without one.
   * @default 'free', or the first plan other than `platform`
   */
  readonly defaultUsagePlan?: string;
  /**
   * Removal policy of the tables and log groups holding state.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How long audit events are kept (DynamoDB TTL), days.
   * @default 400
   */
  readonly auditRetentionDays?: number;
}

/** Limits of one usage plan (tier); see API Gateway usage plans. */
export interface UsagePlanLimits {
  /** Steady requests per second (token bucket refill). */
  readonly rateLimit: number;
  /** Bucket size: requests allowed at once above the steady rate. */
  readonly burstLimit: number;
  /** Requests per period; absent: no quota. */
  readonly quota?: { readonly limit: number; readonly period: 'DAY' | 'WEEK' | 'MONTH' };
}

/** The default tiers; `platform` is the plan of callers without a tenant (operators, services). */
export const DEFAULT_USAGE_PLANS: Readonly<Record<string, UsagePlanLimits>> = {
  free: { rateLimit: 5, burstLimit: 10, quota: { limit: 10_000, period: 'DAY' } },
  standard: { rateLimit: 50, burstLimit: 100, quota: { limit: 1_000_000, period: 'MONTH' } },
  enterprise: { rateLimit: 500, burstLimit: 1000 },
  platform: { rateLimit: 100, burstLimit: 200 },
};

/** Alarm threshold helper: sum over five minutes, missing data is fine. */
function alarm(scope: Construct, id: string, metric: cloudwatch.IMetric, threshold: number, description: string): cloudwatch.Alarm {
  return new cloudwatch.Alarm(scope, id, {
    metric,
    threshold,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    alarmDescription: description,
  });
}

export class LatchkeyStack extends Stack {
  readonly authorizer: LatchkeyAuthorizer;
  readonly api: apigateway.RestApi;
  readonly tenantsTable: dynamodb.Table;
  readonly idempotencyTable: dynamodb.Table;
  /** The audit trail: per-tenant hash chains of every management change and refusal. */
  readonly auditTable: dynamodb.Table;
  readonly managementSecret: secretsmanager.ISecret;
  readonly tenantsFunction: lambda.Function;
  readonly usersFunction: lambda.Function;
  /** Answers without credentials: CORS preflight, 405 on known routes, `GET /openapi.json`. */
  readonly publicFunction: lambda.Function;
  /** Alarms without actions: add an SNS topic or other action where you deploy. */
  readonly alarms: cloudwatch.Alarm[];
  /** The REST API's usage plans by name (`platform` included). */
  readonly usagePlans: Record<string, apigateway.UsagePlan>;
  /** The API Gateway key of callers without a tenant, in the `platform` plan. */
  readonly platformUsageKey: apigateway.IApiKey;

  constructor(scope: Construct, id: string, props: LatchkeyStackProps) {
    super(scope, id, props);
    const stageName = props.stageName ?? 'v1';
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    // Per-tenant limits (functions/core/usage-plans.ts): tenants' API Gateway key values are
    // HMAC-SHA256(secret, tenant id), the platform key's value is a second generated string.
    // Neither is a credential: with apiKeySource AUTHORIZER a caller never sends them, they only
    // name whose plan a request spends. They reach the functions as dynamic references, resolved
    // by CloudFormation at deployment.
    const planLimits = props.usagePlans ?? DEFAULT_USAGE_PLANS;
    if (!planLimits[PLATFORM_PLAN]) throw new Error('usagePlans needs a `platform` plan (callers without a tenant)');
    const tenantPlans = Object.keys(planLimits).filter((p) => p !== PLATFORM_PLAN);
    for (const p of Object.keys(planLimits)) if (!PLAN_NAME_PATTERN.test(p)) throw new Error(`usagePlans: "${p}" is not a plan name (lower-case letters, digits, -)`);
    if (tenantPlans.length === 0) throw new Error('usagePlans needs at least one plan for tenants besides `platform`');
    const defaultPlan = props.defaultUsagePlan ?? (tenantPlans.includes('free') ? 'free' : tenantPlans[0]!);
    if (!tenantPlans.includes(defaultPlan)) throw new Error(`defaultUsagePlan ${defaultPlan} is not one of the tenant plans (${tenantPlans.join(', ')})`);
    const generated = (id: string, description: string) =>
      new secretsmanager.Secret(this, id, {
        description,
        generateSecretString: { excludePunctuation: true, passwordLength: 64 },
        removalPolicy: RemovalPolicy.RETAIN,
      });
    const usageKeySecret = generated('UsageKeySecret', 'Latchkey: derivation key of tenants\' API Gateway usage-key values (not a credential)');
    const platformKeyValue = generated('PlatformUsageKeyValue', 'Latchkey: API Gateway usage-key value of callers without a tenant (not a credential)');
    const usageSecretValue = usageKeySecret.secretValue.unsafeUnwrap();
    /** What the functions that provision tenants' usage keys are told (the tenants function and the backfill). */
    const usageKeyEnv = { USAGE_PLANS: tenantPlans.join(','), DEFAULT_USAGE_PLAN: defaultPlan, USAGE_NAME_PREFIX: this.stackName, USAGE_KEY_SECRET: usageSecretValue };

    this.authorizer = new LatchkeyAuthorizer(this, 'Authorizer', {
      environment: {
        USAGE_KEY_SECRET: usageSecretValue,
        USAGE_PLATFORM_KEY: platformKeyValue.secretValue.unsafeUnwrap(),
        ...(props.usageFlush?.interval ? { USAGE_FLUSH_S: String(props.usageFlush.interval.toSeconds()) } : {}),
        ...(props.usageFlush?.requests !== undefined ? { USAGE_FLUSH_REQUESTS: String(props.usageFlush.requests) } : {}),
      },
      issuer: props.issuer,
      audiences: props.audiences,
      algorithms: props.algorithms,
      tenantClaim: props.tenantClaim,
      rolesClaim: props.rolesClaim,
      acceptApiKeyHeader: props.acceptApiKeyHeader,
      resultsCacheTtl: props.resultsCacheTtl,
      revocationCheckInterval: props.revocationCheckInterval,
      removalPolicy,
    });
    for (const grant of props.allowInvokeFrom ?? []) this.authorizer.allowInvokeFrom(grant.account, grant.apiId);

    this.tenantsTable = new dynamodb.Table(this, 'TenantsTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy,
    });
    this.tenantsTable.addGlobalSecondaryIndex({
      indexName: 'gsi1',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
    });

    // Powertools idempotency records live an hour; PITR is cheap at that size and keeps the
    // table under the same recovery rules as the others.
    this.idempotencyTable = new dynamodb.Table(this, 'IdempotencyTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiration',
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Append-only by the code's rule and tamper-evident by the hash chain (IAM cannot tell an
    // append from an overwrite). The stream carries new events to EventBridge (addAuditEvents).
    this.auditTable = new dynamodb.Table(this, 'AuditTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      stream: dynamodb.StreamViewType.NEW_IMAGE,
      removalPolicy,
    });
    this.auditTable.addGlobalSecondaryIndex({
      indexName: 'gsi1',
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
    });
    const auditRetentionDays = props.auditRetentionDays ?? 400;
    if (!Number.isInteger(auditRetentionDays) || auditRetentionDays < 1 || auditRetentionDays > 3650) throw new Error('auditRetentionDays must be a whole number from 1 to 3650');
    // The authorizer appends aggregated security events (revoked keys used, refused users, rejected secrets).
    this.authorizer.function.addEnvironment('AUDIT_TABLE', this.auditTable.tableName);
    this.authorizer.function.addEnvironment('AUDIT_RETENTION_DAYS', String(auditRetentionDays));

    let secretId: string;
    if (props.managementSecretName !== undefined) {
      this.managementSecret = secretsmanager.Secret.fromSecretNameV2(this, 'Auth0ManagementSecret', props.managementSecretName);
      secretId = props.managementSecretName;
    } else {
      // A placeholder to overwrite with the Auth0 Management API client's domain, id and secret
      // after the first deployment. Its template names nothing from the configuration, so no
      // later change (the issuer, say) makes CloudFormation generate a new value over the one
      // the operator wrote. The name is scoped to this stack and to this creation of it.
      const creation = Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', Aws.STACK_ID))));
      const secret = new secretsmanager.Secret(this, 'Auth0ManagementSecret', {
        secretName: Fn.join('', [this.stackName, '/auth0-management-', creation]),
        description: 'Latchkey: Auth0 Management API client credentials { domain, clientId, clientSecret }',
        generateSecretString: {
          secretStringTemplate: JSON.stringify({ domain: '', clientId: '' }),
          generateStringKey: 'clientSecret',
          excludePunctuation: true,
          passwordLength: 64,
        },
        removalPolicy: RemovalPolicy.RETAIN,
      });
      // The key by ARN on the resource; its use is granted with the secret (grantReadManagementSecret).
      if (props.managementSecretKeyArn !== undefined) (secret.node.defaultChild as secretsmanager.CfnSecret).kmsKeyId = props.managementSecretKeyArn;
      this.managementSecret = secret;
      secretId = secret.secretArn;
    }

    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logs.RetentionDays.ONE_YEAR, removalPolicy });
    const restAuthorizer = this.authorizer.restAuthorizer(this, 'RestAuthorizer');
    this.api = new apigateway.RestApi(this, 'Api', {
      restApiName: `${this.stackName}-api`,
      description: 'Latchkey tenant, API key and user management',
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      cloudWatchRole: true,
      // Usage plans key on what the authorizer returns (usageIdentifierKey), not on a header.
      apiKeySourceType: apigateway.ApiKeySourceType.AUTHORIZER,
      defaultMethodOptions: { authorizer: restAuthorizer, authorizationType: apigateway.AuthorizationType.CUSTOM, apiKeyRequired: true },
      deployOptions: {
        stageName,
        tracingEnabled: true,
        metricsEnabled: true,
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        accessLogDestination: new apigateway.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigateway.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigateway.AccessLogField.contextRequestId(),
            ip: apigateway.AccessLogField.contextIdentitySourceIp(),
            requestTime: apigateway.AccessLogField.contextRequestTime(),
            httpMethod: apigateway.AccessLogField.contextHttpMethod(),
            resourcePath: apigateway.AccessLogField.contextResourcePath(),
            status: apigateway.AccessLogField.contextStatus(),
            responseLatency: apigateway.AccessLogField.contextResponseLatency(),
            errorType: apigateway.AccessLogField.contextErrorResponseType(),
            tenantId: apigateway.AccessLogField.contextAuthorizer('tenantId'),
            clientId: apigateway.AccessLogField.contextAuthorizer('clientId'),
            authMethod: apigateway.AccessLogField.contextAuthorizer('authMethod'),
            authorizerError: apigateway.AccessLogField.contextAuthorizerError(),
            authorizerStatus: apigateway.AccessLogField.contextAuthorizerStatus(),
            authorizerLatency: apigateway.AccessLogField.contextAuthorizerLatency(),
          }),
        ),
      },
    });
    const allowedOrigins = parseAllowedOrigins(props.allowedOrigins ?? [], 'allowedOrigins');
    LatchkeyAuthorizer.addGatewayResponses(this.api, { allowedOrigins });

    const service = (name: string) => ({ POWERTOOLS_SERVICE_NAME: name, ...(allowedOrigins.length > 0 ? { ALLOWED_ORIGINS: allowedOrigins.join(',') } : {}) });
    // Split like the authorizer: the Auth0 SDK, Secrets Manager and Powertools idempotency are
    // imported on first use, so a cold start parses only the code its first request needs.
    this.tenantsFunction = latchkeyFunction(this, 'TenantsFunction', {
      code: bundledCode('functions/tenants/handler.ts', { splitting: true }),
      description: 'Latchkey tenant and API key management',
      logRemovalPolicy: removalPolicy,
      environment: {
        ...service('latchkey-tenants'),
        TENANTS_TABLE: this.tenantsTable.tableName,
        TOKEN_CACHE_TABLE: this.authorizer.tokenCacheTable.tableName,
        IDEMPOTENCY_TABLE: this.idempotencyTable.tableName,
        AUDIT_TABLE: this.auditTable.tableName,
        AUDIT_RETENTION_DAYS: String(auditRetentionDays),
        AUTH0_SECRET_ID: secretId,
        AUDIENCE: props.audiences.join(','),
        IDP: 'auth0',
        // The id only: referencing the stage (a construct) would close a cycle
        // function -> stage -> deployment -> methods -> function.
        REST_API_ID: this.api.restApiId,
        STAGE_NAME: stageName,
        // Plans are found by name: their ids would close the same cycle.
        ...usageKeyEnv,
      },
    });
    this.usersFunction = latchkeyFunction(this, 'UsersFunction', {
      code: bundledCode('functions/users/handler.ts', { splitting: true }),
      description: 'Latchkey user management',
      logRemovalPolicy: removalPolicy,
      environment: {
        ...service('latchkey-users'),
        TENANTS_TABLE: this.tenantsTable.tableName,
        TOKEN_CACHE_TABLE: this.authorizer.tokenCacheTable.tableName,
        IDEMPOTENCY_TABLE: this.idempotencyTable.tableName,
        AUDIT_TABLE: this.auditTable.tableName,
        AUDIT_RETENTION_DAYS: String(auditRetentionDays),
        AUTH0_SECRET_ID: secretId,
        IDP: 'auth0',
      },
    });

    this.publicFunction = latchkeyFunction(this, 'PublicFunction', {
      code: bundledCode('functions/public/handler.ts'),
      description: 'Latchkey answers without credentials: CORS preflight, 405, the OpenAPI document',
      logRemovalPolicy: removalPolicy,
      memorySize: 128,
      environment: service('latchkey-public'),
    });

    this.usagePlans = {};
    for (const [name, limits] of Object.entries(planLimits)) {
      this.usagePlans[name] = this.api.addUsagePlan(`UsagePlan-${name}`, {
        name: `${this.stackName}-${name}`,
        description: name === PLATFORM_PLAN ? 'Latchkey: callers without a tenant' : `Latchkey tenant plan ${name}`,
        throttle: { rateLimit: limits.rateLimit, burstLimit: limits.burstLimit },
        ...(limits.quota ? { quota: { limit: limits.quota.limit, period: apigateway.Period[limits.quota.period] } } : {}),
        apiStages: [{ api: this.api, stage: this.api.deploymentStage }],
      });
    }
    this.platformUsageKey = new apigateway.ApiKey(this, 'PlatformUsageKey', {
      apiKeyName: `${this.stackName}-${PLATFORM_PLAN}`,
      description: 'Latchkey: usage key of callers without a tenant',
      value: platformKeyValue.secretValue.unsafeUnwrap(),
      enabled: true,
    });
    this.usagePlans[PLATFORM_PLAN]!.addApiKey(this.platformUsageKey);
    for (const secret of [usageKeySecret, platformKeyValue]) {
      NagSuppressions.addResourceSuppressions(secret, [
        {
          id: 'AwsSolutions-SMG4',
          reason:
            'Not a credential: it derives or is the value of the Latchkey API Gateway usage keys, which with apiKeySource AUTHORIZER no caller sends; rotating it would need every tenant key recreated, for no gain.',
        },
      ]);
    }

    this.grantPermissions(stageName, props.managementSecretKeyArn);
    this.addRoutes();
    this.addStateMigration(removalPolicy);
    this.addUsageKeyBackfill(removalPolicy, usageKeyEnv);
    this.addAuditEvents();
    this.addOrphanReconciler(removalPolicy, secretId, props.audiences, props.managementSecretKeyArn);

    this.alarms = [
      alarm(
        this,
        'AuthorizerFailuresAlarm',
        this.authorizer.metricFailures(),
        5,
        'Latchkey authorizer answered 503 (JWKS, token endpoint or DynamoDB unavailable, timeout or crash) at least 5 times in 5 minutes',
      ),
      alarm(
        this,
        'AuthorizerThrottlesAlarm',
        this.authorizer.function.metricThrottles({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        1,
        'Latchkey authorizer was throttled: callers got 503s; raise the account or reserved concurrency',
      ),
      alarm(
        this,
        'Api5xxAlarm',
        this.api.metricServerError({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        5,
        'Latchkey management API answered 5XX at least 5 times in 5 minutes',
      ),
    ];

    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Base URL of the management API stage' });
    // Read by `npm run smoke --stack` (scripts/smoke.ts): what to call, the issuer, and the bound to hold it to.
    new CfnOutput(this, 'Issuer', { value: props.issuer, description: 'Issuer of the accepted tokens (its discovery document names the token endpoint)' });
    new CfnOutput(this, 'Audience', { value: props.audiences[0]!, description: 'Audience requested for API keys' });
    new CfnOutput(this, 'RevocationCheckSeconds', {
      value: String(this.authorizer.revocationCheckInterval.toSeconds()),
      description: 'REVOCATION_CHECK_S: a revoked key or a disabled tenant is refused everywhere within it',
    });
    if (allowedOrigins.length > 0) new CfnOutput(this, 'AllowedOrigins', { value: allowedOrigins.join(','), description: 'Origins the API allows (CORS)' });
    new CfnOutput(this, 'AuthorizerFunctionArn', {
      value: this.authorizer.function.functionArn,
      description: 'Attach to other APIs with LatchkeyAuthorizer.fromAuthorizerAttributes',
    });
    new CfnOutput(this, 'TokenCacheTableArn', {
      value: this.authorizer.tokenCacheTable.tableArn,
      description: "Latchkey's state table: pass it to other LatchkeyAuthorizers (tokenCacheTable) so revocations reach them",
    });
    new CfnOutput(this, 'Auth0SecretName', {
      value: props.managementSecretName ?? this.managementSecret.secretName,
      description: 'Secret holding { domain, clientId, clientSecret } of the Auth0 Management API client',
    });
    const parameters = latchkeyParameterNames(this.stackName);
    new ssm.StringParameter(this, 'AuthorizerFunctionArnParameter', {
      parameterName: parameters.authorizerFunctionArn,
      stringValue: this.authorizer.function.functionArn,
      description: 'Latchkey authorizer function, for LatchkeyAuthorizer.fromAuthorizerAttributes',
    });
    new ssm.StringParameter(this, 'TokenCacheTableArnParameter', {
      parameterName: parameters.tokenCacheTableArn,
      stringValue: this.authorizer.tokenCacheTable.tableArn,
      description: 'Latchkey state table, for LatchkeyAuthorizer tokenCacheTable',
    });

    this.addNagSuppressions(props.managementSecretName !== undefined);
  }

  /**
   * Hourly: deletes provider clients whose key has no active record (a creation that crashed
   * between the provider and the registry), revoking them in the principal state first
   * (`KeyLifecycle.reconcileOrphans`). Reads keys, deletes only stale pending records.
   */
  private addOrphanReconciler(removalPolicy: RemovalPolicy, secretId: string, audiences: string[], secretKeyArn: string | undefined): void {
    const fn = latchkeyFunction(this, 'OrphanReconcilerFunction', {
      code: bundledCode('functions/reconciler/handler.ts', { splitting: true }),
      description: 'Latchkey: deletes identity-provider clients of API keys that were never issued',
      logRemovalPolicy: removalPolicy,
      timeout: Duration.minutes(5),
      // One run at a time: two would only repeat each other's deletions.
      reservedConcurrentExecutions: 1,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'latchkey-reconciler',
        TENANTS_TABLE: this.tenantsTable.tableName,
        TOKEN_CACHE_TABLE: this.authorizer.tokenCacheTable.tableName,
        AUTH0_SECRET_ID: secretId,
        AUDIENCE: audiences.join(','),
        IDP: 'auth0',
      },
    });
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:GetItem', 'dynamodb:DeleteItem'], resources: [this.tenantsTable.tableArn] }));
    // Revokes the orphan's client in the principal state: client items only.
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:UpdateItem'],
        resources: [this.authorizer.tokenCacheTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['client#*'] } },
      }),
    );
    this.grantReadManagementSecret(fn, secretKeyArn);
    new events.Rule(this, 'OrphanReconcilerSchedule', {
      description: 'Latchkey: hourly clean-up of identity-provider clients whose API key was never issued',
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [new eventsTargets.LambdaFunction(fn, { retryAttempts: 0 })],
    });
  }

  /**
   * Tenants' usage keys: find, create (and, for the tenants function, delete) keys, find plans,
   * attach, check and detach keys (every call of `functions/adapters/api-gateway-usage-keys.ts`).
   * API Gateway's IAM resources are paths, and keys have no name in theirs; the plans' ids cannot
   * be named here without a cycle (role policy → plan → stage → deployment → methods → function).
   */
  private grantUsageKeyCalls(fn: lambda.Function, opts: { deleteKeys: boolean; readUsage?: boolean }): void {
    const apigw = (resource: string) => this.formatArn({ service: 'apigateway', account: '', resource });
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['apigateway:GET', 'apigateway:POST'], resources: [apigw('/apikeys')] }));
    if (opts.deleteKeys) fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['apigateway:DELETE'], resources: [apigw('/apikeys/*')] }));
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['apigateway:GET'], resources: [apigw('/usageplans')] }));
    // GetUsage: what a tenant's key was served, for GET /tenants/{id}/usage.
    if (opts.readUsage) fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['apigateway:GET'], resources: [apigw('/usageplans/*/usage')] }));
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['apigateway:GET', 'apigateway:POST', 'apigateway:DELETE'], resources: [apigw('/usageplans/*/keys'), apigw('/usageplans/*/keys/*')] }),
    );
    NagSuppressions.addResourceSuppressions(
      fn.role!,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Latchkey attaches a tenant usage key to its plan: API Gateway names usage plans by generated id, which the function cannot reference without a dependency cycle (plan, stage, deployment, methods, function); the function finds its plans by the plan names of this stack.',
          appliesTo: [{ regex: '/^Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/usageplans/\\*/(keys.*|usage)$/g' }],
        },
        ...(opts.deleteKeys
          ? [
              {
                id: 'AwsSolutions-IAM5',
                reason:
                  "Latchkey deletes a deleted tenant's usage key (the account holds at most 10,000): API Gateway names keys by generated id in its IAM paths, never by name; the function finds the key by the name this stack gave it.",
                appliesTo: [{ regex: '/^Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/apikeys/\\*$/g' }],
              },
            ]
          : []),
      ],
      true,
    );
  }

  /**
   * Gives tenants that predate usage plans their key on the default plan (`backfillUsageKeys`;
   * idempotent): from a trigger once the plans exist (it runs when this function changes, not on
   * every deployment) and hourly.
   */
  private addUsageKeyBackfill(removalPolicy: RemovalPolicy, env: Record<string, string>): void {
    const fn = latchkeyFunction(this, 'UsageKeyBackfillFunction', {
      code: bundledCode('functions/migrate/usage-keys.ts'),
      description: 'Latchkey: usage keys for tenants created before usage plans, run at deployment',
      logRemovalPolicy: removalPolicy,
      timeout: Duration.minutes(15),
      environment: {
        POWERTOOLS_SERVICE_NAME: 'latchkey-usage-keys',
        TENANTS_TABLE: this.tenantsTable.tableName,
        TOKEN_CACHE_TABLE: this.authorizer.tokenCacheTable.tableName,
        ...env,
      },
    });
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:UpdateItem'], resources: [this.tenantsTable.tableArn] }));
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${this.tenantsTable.tableArn}/index/gsi1`] }));
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:GetItem'], resources: [this.authorizer.tokenCacheTable.tableArn] }));
    this.grantUsageKeyCalls(fn, { deleteKeys: false });
    new triggers.Trigger(this, 'UsageKeyBackfill', {
      handler: fn,
      timeout: Duration.minutes(15),
      executeAfter: [this.tenantsTable, ...Object.values(this.usagePlans)],
    });
    // A trigger runs when the stack is created and when this function changes, not at every
    // deployment; one run reaches about 780 tenants. Hourly runs go on from where it stopped
    // (tenants with a plan on record cost no call) and catch any tenant a run could not provision.
    new events.Rule(this, 'UsageKeyBackfillSchedule', {
      description: 'Latchkey: usage keys for tenants without a plan on record, hourly',
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [new eventsTargets.LambdaFunction(fn, { retryAttempts: 0 })],
    });
  }

  /**
   * Brings the previous version's keys and revocation markers into the principal-state model
   * (functions/adapters/state-migration.ts) on deployment, before the authorizer's new code goes
   * live: the new authorizer refuses keys without a state item. Idempotent.
   */
  private addStateMigration(removalPolicy: RemovalPolicy): void {
    const fn = latchkeyFunction(this, 'StateMigrationFunction', {
      code: bundledCode('functions/migrate/handler.ts'),
      description: 'Latchkey: principal-state migration run at deployment',
      logRemovalPolicy: removalPolicy,
      timeout: Duration.minutes(10),
      environment: {
        POWERTOOLS_SERVICE_NAME: 'latchkey-migrate',
        TENANTS_TABLE: this.tenantsTable.tableName,
        TOKEN_CACHE_TABLE: this.authorizer.tokenCacheTable.tableName,
      },
    });
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:Scan'], resources: [this.tenantsTable.tableArn] }));
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:UpdateItem'], resources: [this.authorizer.tokenCacheTable.tableArn] }),
    );
    new triggers.Trigger(this, 'StateMigration', {
      handler: fn,
      timeout: Duration.minutes(10),
      executeAfter: [this.tenantsTable, this.authorizer.tokenCacheTable],
      executeBefore: [this.authorizer.function],
    });
    const provider = this.node.tryFindChild('AWSCDKTriggerCustomResourceProviderCustomResourceProvider');
    if (provider) {
      NagSuppressions.addResourceSuppressions(
        provider,
        [
          { id: 'AwsSolutions-IAM4', reason: "CDK's trigger provider (a framework function that only invokes the migration) uses the basic execution role; its policy is CDK's, not ours." },
          { id: 'AwsSolutions-L1', reason: "CDK's trigger provider runtime is chosen by aws-cdk-lib." },
        ],
        true,
      );
    }
  }

  /**
   * Read access to the management secret, and `kms:Decrypt` through Secrets Manager on its
   * customer-managed key when it has one (the AWS-managed key needs no grant).
   */
  private grantReadManagementSecret(fn: lambda.Function, keyArn: string | undefined): void {
    this.managementSecret.grantRead(fn);
    if (keyArn === undefined) return;
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` } },
      }),
    );
  }

  private grantPermissions(stageName: string, secretKeyArn: string | undefined): void {
    const tenants = this.tenantsFunction;
    const users = this.usersFunction;
    const idempotencyActions = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];

    // Tenants and their keys: no Scan, no DeleteItem (tenants and keys are disabled or
    // revoked, never deleted), and only the one index.
    tenants.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
        resources: [this.tenantsTable.tableArn],
      }),
    );
    tenants.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${this.tenantsTable.tableArn}/index/gsi1`] }));
    this.authorizer.grantRevoke(tenants);
    tenants.addToRolePolicy(new iam.PolicyStatement({ actions: idempotencyActions, resources: [this.idempotencyTable.tableArn] }));
    this.grantReadManagementSecret(tenants, secretKeyArn);
    // FlushStageAuthorizersCache on this API's stage only, so a revocation is not served from
    // API Gateway's authorizer cache.
    tenants.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['apigateway:DELETE'],
        resources: [this.formatArn({ service: 'apigateway', account: '', resource: `/restapis/${this.api.restApiId}/stages/${stageName}/cache/authorizers` })],
      }),
    );

    this.grantUsageKeyCalls(tenants, { deleteKeys: true, readUsage: true });

    users.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:GetItem'], resources: [this.tenantsTable.tableArn] }));
    // Blocks, deletions and role changes: the users' principal state, nothing else of the token cache.
    users.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [this.authorizer.tokenCacheTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['user#*'] } },
      }),
    );
    users.addToRolePolicy(new iam.PolicyStatement({ actions: idempotencyActions, resources: [this.idempotencyTable.tableArn] }));
    this.grantReadManagementSecret(users, secretKeyArn);

    // The audit trail: append (a transaction of PutItem with conditions, and DeleteItem of the
    // pending outbox item it seals), read the chain head and a partition. No Scan, no UpdateItem.
    const auditActions = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query'];
    for (const fn of [tenants, users, this.authorizer.function]) fn.addToRolePolicy(new iam.PolicyStatement({ actions: auditActions, resources: [this.auditTable.tableArn] }));
    // Operators' cross-tenant reads: the tenants function only.
    tenants.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${this.auditTable.tableArn}/index/gsi1`] }));
  }

  /**
   * Every new audit event to the default EventBridge bus (source `latchkey`, detail type
   * `Latchkey audit event`, detail the stream record) by an EventBridge Pipe on the table's
   * stream: no function, and the management functions never wait for EventBridge.
   */
  private addAuditEvents(): void {
    const role = new iam.Role(this, 'AuditEventsPipeRole', { assumedBy: new iam.ServicePrincipal('pipes.amazonaws.com') });
    // The four actions Pipes documents for a DynamoDB source, on this stream only (grantStreamRead adds ListStreams on '*').
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
        resources: [this.auditTable.tableStreamArn!],
      }),
    );
    const bus = this.formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [bus] }));
    new pipes.CfnPipe(this, 'AuditEventsPipe', {
      description: 'Latchkey audit events to the default event bus',
      roleArn: role.roleArn,
      source: this.auditTable.tableStreamArn!,
      sourceParameters: {
        dynamoDbStreamParameters: { startingPosition: 'LATEST', batchSize: 10, maximumRetryAttempts: 185 },
        // Only new events: not the chain head, nor the pending outbox items, nor TTL removals.
        filterCriteria: { filters: [{ pattern: JSON.stringify({ eventName: ['INSERT'], dynamodb: { Keys: { sk: { S: [{ prefix: 'e#' }] } } } }) }] },
      },
      target: bus,
      targetParameters: { eventBridgeEventBusParameters: { source: 'latchkey', detailType: 'Latchkey audit event' } },
    });
  }

  private addRoutes(): void {
    const tenantsIntegration = new apigateway.LambdaIntegration(this.tenantsFunction);
    const usersIntegration = new apigateway.LambdaIntegration(this.usersFunction);
    const root = this.api.root;

    const tenants = root.addResource('tenants');
    tenants.addMethod('POST', tenantsIntegration);
    tenants.addMethod('GET', tenantsIntegration);
    const tenant = tenants.addResource('{tenantId}');
    for (const m of ['GET', 'PATCH', 'DELETE']) tenant.addMethod(m, tenantsIntegration);
    tenant.addResource('usage').addMethod('GET', tenantsIntegration);
    const tenantAudit = tenant.addResource('audit');
    tenantAudit.addMethod('GET', tenantsIntegration);
    tenantAudit.addResource('verify').addMethod('GET', tenantsIntegration);
    root.addResource('audit').addMethod('GET', tenantsIntegration);
    const keys = tenant.addResource('api-keys');
    keys.addMethod('POST', tenantsIntegration);
    keys.addMethod('GET', tenantsIntegration);
    const key = keys.addResource('{keyId}');
    key.addMethod('DELETE', tenantsIntegration);
    key.addResource('rotate').addMethod('POST', tenantsIntegration);

    const users = root.addResource('users');
    users.addMethod('POST', usersIntegration);
    users.addMethod('GET', usersIntegration);
    const user = users.addResource('{userId}');
    for (const m of ['GET', 'PATCH', 'DELETE']) user.addMethod(m, usersIntegration);
    root.addResource('me').addMethod('GET', usersIntegration);

    // Without credentials: `GET /openapi.json`, and every other method of every route (the CORS
    // preflight `OPTIONS`, and the wrong methods API Gateway alone would answer 403 "Missing
    // Authentication Token") goes to the public function, which answers 204 or 405 with `Allow`.
    // Methods the route has are matched first, with the authorizer.
    const publicIntegration = new apigateway.LambdaIntegration(this.publicFunction);
    const open = { authorizationType: apigateway.AuthorizationType.NONE, apiKeyRequired: false };
    root.addResource('openapi.json').addMethod('GET', publicIntegration, open);
    const visit = (r: apigateway.IResource): void => {
      if (r !== root) r.addMethod('ANY', publicIntegration, open);
      for (const child of r.node.children) if (child instanceof apigateway.Resource) visit(child);
    };
    visit(root);
  }

  private addNagSuppressions(importedSecret: boolean): void {
    suppressLatchkeyRuntime(this);
    NagSuppressions.addResourceSuppressions(
      this.api,
      [
        {
          id: 'AwsSolutions-APIG2',
          reason:
            'Latchkey validates every body and path parameter in the handlers with zod schemas and answers RFC 9457 problems listing each invalid field; an API Gateway validator would duplicate the schemas with worse errors.',
        },
        {
          id: 'AwsSolutions-APIG3',
          reason:
            'WAF is a choice for whoever deploys Latchkey (it costs per web ACL and rule); Latchkey rejects bad credentials in the authorizer, and API Gateway throttling limits floods. Associate a web ACL with the stage where required.',
        },
        {
          id: 'AwsSolutions-COG4',
          reason:
            'Every Latchkey method that reads or changes data uses the Latchkey Lambda REQUEST authorizer (Auth0 JWTs, API keys, service tokens); Cognito user pools are not the identity provider. The public methods answer preflights, 405 and the OpenAPI document only.',
        },
        {
          id: 'AwsSolutions-APIG4',
          reason:
            'Only GET /openapi.json and the ANY methods of the Latchkey public function are open: browsers send the CORS preflight without credentials, and a wrong method gets 405 with Allow; that function reads no data and holds no permissions.',
        },
        {
          id: 'AwsSolutions-IAM4',
          reason:
            'The API Gateway account-level CloudWatch role needs the AWS-managed AmazonAPIGatewayPushToCloudWatchLogs policy so the Latchkey stage can write execution and access logs to log groups API Gateway names itself.',
          appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs'],
        },
      ],
      true,
    );
    if (this.managementSecret instanceof secretsmanager.Secret) {
      NagSuppressions.addResourceSuppressions(this.managementSecret, [
        {
          id: 'AwsSolutions-SMG4',
          reason:
            'The secret holds an Auth0 Management API client secret, which is rotated in Auth0 (rotate-secret) and then written here; Secrets Manager has no rotation function for Auth0 clients.',
        },
      ]);
    }
    if (importedSecret) {
      for (const fn of [this.tenantsFunction, this.usersFunction]) {
        NagSuppressions.addResourceSuppressions(
          fn.role!,
          [
            {
              id: 'AwsSolutions-IAM5',
              reason:
                'The Auth0 management secret is imported by name, so its ARN ends in the unknown 6-character suffix Secrets Manager appends; the wildcard matches only that suffix of the one secret.',
              appliesTo: [{ regex: '/^Resource::arn:<AWS::Partition>:secretsmanager:.*-\\?\\?\\?\\?\\?\\?$/g' }],
            },
          ],
          true,
        );
      }
    }
  }
}
