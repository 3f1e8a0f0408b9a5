/**
 * `LatchkeyAuthorizer`: the Latchkey authorizer function and its state (token-cache) table,
 * attachable to any number of REST APIs (one `RequestAuthorizer` each) and HTTP APIs (one
 * `HttpLambdaAuthorizer` each), all invoking the same function.
 *
 * Three ways to use it:
 * - in the stack that runs Latchkey's management API, which writes revocations to the table;
 * - `LatchkeyAuthorizer.fromAuthorizerAttributes`: share that deployed function from another
 *   stack, app or account;
 * - `new LatchkeyAuthorizer(..., { tokenCacheTable })` in another stack: a function of one's own
 *   that reads Latchkey's state table, so revocations reach it.
 */
import { existsSync } from 'node:fs';
import { Annotations, Arn, ArnFormat, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType, type HttpLambdaAuthorizerProps } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import { addProblemGatewayResponses, type GatewayResponsesOptions } from './gateway-responses.js';
import { AUTHORIZER_ASSET_DIR, latchkeyFunction } from './latchkey-function.js';
import { DECISION_BUDGET_MS } from './contract/limits.js';

/**
 * The documented revocation bound: a revoked API key stops working within it on every API the
 * authorizer guards, whatever caches sit in front (API Gateway's result cache plus the
 * function's recheck interval).
 */
export const MAX_REVOCATION_DELAY = Duration.seconds(60);
/** How long the function trusts a cached API key before re-reading its revocation state, unless configured. */
export const DEFAULT_REVOCATION_CHECK_INTERVAL = Duration.seconds(30);

/** Levels the authorizer logs at; Lambda's application log levels of the same names. */
const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'];

/** Time the function gets beyond the decision budget: answering 503 itself, and a slow runtime. */
const TIMEOUT_MARGIN_S = 2;

/** The authorizer function's timeout for a decision budget: the budget, rounded up, plus margin. */
export function authorizerTimeout(decisionBudget: Duration): Duration {
  return Duration.seconds(Math.ceil(decisionBudget.toMilliseconds() / 1000) + TIMEOUT_MARGIN_S);
}

/** Actions the authorizer needs on the token cache: read, cache, lease, check in. Never Scan. */
const AUTHORIZER_CACHE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
/**
 * The token-cache table's sparse index over principal-state changes, which every authorizer
 * container queries (functions/adapters/dynamodb-state-items.ts: `STATE_FEED_INDEX`; a test keeps
 * the two equal, since this package does not ship Latchkey's sources).
 */
export const STATE_FEED_INDEX = 'state-feed';
/** The attributes of a state item the index projects (besides its keys and `pk`). */
export const STATE_FEED_ATTRIBUTES = ['stateKind', 'status', 'revokedAt', 'notBefore', 'tenantId', 'keyId', 'createdAt', 'revoked'] as const;
/** Actions management needs on the token cache: principal state, purge tokens, read last use. */
const REVOKE_CACHE_ACTIONS = [...AUTHORIZER_CACHE_ACTIONS, 'dynamodb:BatchWriteItem'];

/** How API Gateway chooses what to send to the authorizer and how long it reuses the answer. */
export interface LatchkeyAuthorizerCacheOptions {
  /**
   * Accept API keys in an `X-Api-Key` header as well as in `Authorization`.
   *
   * API Gateway invokes a REQUEST authorizer that lists identity sources only when *every*
   * one is present and non-empty, and answers 401 itself otherwise. Callers send either
   * `Authorization` (Bearer JWT or Basic API key) or `X-Api-Key`, so:
   * - `true`: API Gateway's result cache is off (`resultsCacheTtl` 0) and the authorizers list
   *   **no** identity source: the function runs on every request and its in-memory caches
   *   (verified JWTs, exchanged API keys) keep that cheap.
   * - `false`: the only identity source is `Authorization` and API Gateway caches results for
   *   `resultsCacheTtl`; API keys must then be sent as `Authorization: Basic …`.
   * @default true
   */
  readonly acceptApiKeyHeader?: boolean;
  /**
   * How long API Gateway caches an authorizer result, keyed by the identity sources. A cached
   * Allow outlives a revocation by up to this TTL on top of the function's
   * `revocationCheckInterval`, so the two together must stay within `MAX_REVOCATION_DELAY`
   * (60 s); checked at synth. Only with `acceptApiKeyHeader: false`.
   * @default Duration.seconds(30) when `acceptApiKeyHeader` is false, else Duration.seconds(0)
   */
  readonly resultsCacheTtl?: Duration;
}

/** Size and operation of the authorizer function. */
export interface LatchkeyAuthorizerFunctionOptions {
  /**
   * Memory of the function in MB (Lambda gives CPU in proportion).
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * Timeout of the function. API Gateway waits at most 10 s for an authorizer in any case.
   * @default - the decision budget, rounded up, plus 2 s (5 s with the default budget)
   */
  readonly timeout?: Duration;
  /**
   * Reserved concurrency of the function: guarantees it capacity and caps it.
   * @default - none: the function shares the account's unreserved concurrency
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * X-Ray tracing of the function (`ACTIVE` adds `xray:PutTraceSegments` to its role).
   * @default lambda.Tracing.DISABLED
   */
  readonly tracing?: lambda.Tracing;
  /**
   * Retention of the function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Powertools log level of the function.
   * @default 'INFO'
   */
  readonly logLevel?: string;
}

export interface LatchkeyAuthorizerProps extends LatchkeyAuthorizerCacheOptions, LatchkeyAuthorizerFunctionOptions {
  /** Exact `iss` of accepted tokens, e.g. `https://tenant.eu.auth0.com/` (Auth0 keeps the trailing slash). */
  readonly issuer: string;
  /** Accepted audiences (API identifiers); the first one is requested when exchanging API keys. */
  readonly audiences: string[];
  /**
   * Accepted JWS algorithms.
   * @default - the function's default, ['RS256']
   */
  readonly algorithms?: string[];
  /**
   * Namespaced claim holding the tenant id.
   * @default - the function's default, 'https://latchkey.dev/tenant_id'
   */
  readonly tenantClaim?: string;
  /**
   * Namespaced claim holding the roles.
   * @default - the function's default, 'https://latchkey.dev/roles'
   */
  readonly rolesClaim?: string;
  /**
   * OAuth token endpoint used to exchange API keys (client credentials).
   * @default - `<issuer>oauth/token`, derived by the function
   */
  readonly tokenEndpoint?: string;
  /**
   * JWKS URI.
   * @default - `<issuer>.well-known/jwks.json`, derived by the function
   */
  readonly jwksUri?: string;
  /**
   * How long a cached API key is trusted before its revocation state is read again
   * (`REVOCATION_CHECK_S`). Together with `resultsCacheTtl`, at most `MAX_REVOCATION_DELAY`.
   * @default DEFAULT_REVOCATION_CHECK_INTERVAL (30 s)
   */
  readonly revocationCheckInterval?: Duration;
  /**
   * Every decision answers within this; a dependency that cannot answer in time gives 503 +
   * Retry-After, never 401. The function's timeout is derived from it, with margin.
   * @default Duration.seconds(3)
   */
  readonly decisionBudget?: Duration;
  /**
   * The state table: cached tokens and the revocation markers Latchkey's management API writes
   * (string partition key `pk`, TTL attribute `ttl`). Outside the stack that runs the
   * management API, pass Latchkey's own table, e.g.
   * `dynamodb.Table.fromTableArn(this, 'LatchkeyState', arn)`: with a table of its own the
   * authorizer never sees a revocation, and synth warns about it.
   * @default - a new pay-per-request table with point-in-time recovery
   */
  readonly tokenCacheTable?: dynamodb.ITable;
  /**
   * Removal policy of the token-cache table this construct creates and of the function's logs.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * More environment variables for the function (e.g. `TOKEN_TYP`, `TOKEN_AUDIENCE_PARAM`).
   * @default - none
   */
  readonly environment?: Record<string, string>;
}

/** A Latchkey authorizer function, created here or imported, that can be attached to APIs. */
export interface ILatchkeyAuthorizer extends IConstruct {
  /** The authorizer function. */
  readonly function: lambda.IFunction;
  /** The state table the function reads, when known. */
  readonly tokenCacheTable: dynamodb.ITable | undefined;
  /** Whether `X-Api-Key` is an accepted credential header (and caching therefore off). */
  readonly acceptApiKeyHeader: boolean;
  /** The API Gateway result-cache TTL of the authorizers this creates. */
  readonly resultsCacheTtl: Duration;
  /** The function's `REVOCATION_CHECK_S`. */
  readonly revocationCheckInterval: Duration;
  /**
   * A new `RequestAuthorizer` for one REST API; `scope` must be in the API's stack. No identity
   * source when uncached; `Authorization` when cached.
   */
  restAuthorizer(scope: Construct, id?: string): apigateway.RequestAuthorizer;
  /**
   * A new simple-response authorizer for one HTTP API; `scope` must be in the API's stack. No
   * identity source when uncached; `Authorization` and the route key when cached.
   */
  httpAuthorizer(scope: Construct, id?: string): HttpLambdaAuthorizer;
  /** Invocations of the function (every request the authorizers did not answer from cache). */
  metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Duration of the function, p99 by default: the latency every uncached request waits for. */
  metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Throttled invocations: each one is a 503 to a caller. */
  metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}

/** Attributes of a deployed Latchkey authorizer, for `LatchkeyAuthorizer.fromAuthorizerAttributes`. */
export interface LatchkeyAuthorizerAttributes extends LatchkeyAuthorizerCacheOptions {
  /** ARN of the deployed authorizer function (the `AuthorizerFunctionArn` output of the Latchkey stack). */
  readonly functionArn: string;
  /**
   * ARN of its state table (the `TokenCacheTableArn` output).
   * @default - not imported
   */
  readonly tokenCacheTableArn?: string;
  /**
   * The deployed function's `REVOCATION_CHECK_S`, to check the revocation bound of a cache TTL.
   * @default DEFAULT_REVOCATION_CHECK_INTERVAL (30 s)
   */
  readonly revocationCheckInterval?: Duration;
  /**
   * Whether the function is in the importing stack's account and region, so that this stack
   * may add invoke permissions for its APIs to it. In another account the owner grants them
   * instead, with `allowInvokeFrom(account, apiId)`.
   * @default - derived: false when the ARN names an account or region other than the stack's
   * (as known at synth), else true
   */
  readonly sameEnvironment?: boolean;
}

/**
 * `HttpLambdaAuthorizer` that omits `IdentitySource` when given none (the L2 would render `[]`),
 * the documented form of an uncached REQUEST authorizer without identity sources.
 */
class LatchkeyHttpLambdaAuthorizer extends HttpLambdaAuthorizer {
  readonly #id: string;
  readonly #omitIdentitySource: boolean;

  constructor(id: string, handler: lambda.IFunction, props: HttpLambdaAuthorizerProps) {
    super(id, handler, props);
    this.#id = id;
    this.#omitIdentitySource = props.identitySource?.length === 0;
  }

  override bind(options: apigwv2.HttpRouteAuthorizerBindOptions): apigwv2.HttpRouteAuthorizerConfig {
    const config = super.bind(options);
    if (this.#omitIdentitySource) {
      const cfn = options.scope.node.tryFindChild(this.#id)?.node.defaultChild;
      if (cfn instanceof apigwv2.CfnAuthorizer) cfn.addPropertyDeletionOverride('IdentitySource');
    }
    return config;
  }
}

interface ResolvedCache {
  acceptApiKeyHeader: boolean;
  resultsCacheTtl: Duration;
  revocationCheckInterval: Duration;
}

/** Resolves the cache options and checks, at synth, that they keep the revocation bound. */
function resolveCache(opts: LatchkeyAuthorizerCacheOptions, revocationCheck: Duration | undefined): ResolvedCache {
  const acceptApiKeyHeader = opts.acceptApiKeyHeader ?? true;
  const revocationCheckInterval = revocationCheck ?? DEFAULT_REVOCATION_CHECK_INTERVAL;
  const resultsCacheTtl = opts.resultsCacheTtl ?? (acceptApiKeyHeader ? Duration.seconds(0) : Duration.seconds(30));
  const bound = MAX_REVOCATION_DELAY.toSeconds();
  const recheck = Token.isUnresolved(revocationCheckInterval.toSeconds()) ? undefined : revocationCheckInterval.toSeconds();
  const ttl = Token.isUnresolved(resultsCacheTtl.toSeconds()) ? undefined : resultsCacheTtl.toSeconds();
  if (recheck !== undefined && recheck > bound) {
    throw new Error(`revocationCheckInterval must be at most ${bound} s (the revocation bound), got ${recheck} s`);
  }
  if (ttl !== undefined) {
    if (acceptApiKeyHeader && ttl > 0) {
      throw new Error(
        'resultsCacheTtl must be 0 when acceptApiKeyHeader is true: a cached REQUEST authorizer needs identity sources, and API Gateway ' +
          'rejects every caller who does not send all of them. Set acceptApiKeyHeader: false to cache on Authorization.',
      );
    }
    if (ttl + (recheck ?? 0) > bound) {
      throw new Error(
        `resultsCacheTtl (${ttl} s) plus revocationCheckInterval (${recheck} s) must be at most ${bound} s, the revocation bound: ` +
          'a cached Allow outlives a revocation by both',
      );
    }
  }
  return { acceptApiKeyHeader, resultsCacheTtl, revocationCheckInterval };
}

/**
 * Whether a function is in `stack`'s account and region, from what is known at synth: false
 * only when a known account or region differs.
 */
function inEnvironmentOf(stack: Stack, env: { account?: string; region?: string }): boolean {
  const differs = (a: string | undefined, b: string) => a !== undefined && a !== '' && !Token.isUnresolved(a) && !Token.isUnresolved(b) && a !== b;
  return !differs(env.account, stack.account) && !differs(env.region, stack.region);
}

function envOfArn(arn: string): { account?: string; region?: string } {
  if (Token.isUnresolved(arn)) return {};
  const parts = Arn.split(arn, ArnFormat.COLON_RESOURCE_NAME);
  return { account: parts.account, region: parts.region };
}

abstract class LatchkeyAuthorizerBase extends Construct implements ILatchkeyAuthorizer {
  abstract readonly function: lambda.IFunction;
  abstract readonly tokenCacheTable: dynamodb.ITable | undefined;
  readonly acceptApiKeyHeader: boolean;
  readonly resultsCacheTtl: Duration;
  readonly revocationCheckInterval: Duration;

  protected constructor(scope: Construct, id: string, cache: LatchkeyAuthorizerCacheOptions, revocationCheck: Duration | undefined) {
    super(scope, id);
    const resolved = resolveCache(cache, revocationCheck);
    this.acceptApiKeyHeader = resolved.acceptApiKeyHeader;
    this.resultsCacheTtl = resolved.resultsCacheTtl;
    this.revocationCheckInterval = resolved.revocationCheckInterval;
  }

  /** Whether the function may get invoke permissions added by a stack in `target`'s environment. */
  protected abstract sameEnvironmentAs(target: Stack): boolean;

  /**
   * The function as seen from `scope`'s stack. API Gateway authorizers add their invoke
   * permission (scoped to the authorizer's ARN) on the handler; for an API in another stack
   * that permission must live in the API's stack, or the two stacks would reference each other,
   * so the function is imported there. In another account the owner grants it instead.
   */
  protected handlerFor(scope: Construct, id: string): lambda.IFunction {
    const target = Stack.of(scope);
    if (target === Stack.of(this.function)) return this.function;
    const same = this.sameEnvironmentAs(target);
    return lambda.Function.fromFunctionAttributes(scope, `${id}Function`, { functionArn: this.function.functionArn, sameEnvironment: same, skipPermissions: !same });
  }

  restAuthorizer(scope: Construct, id = 'LatchkeyAuthorizer'): apigateway.RequestAuthorizer {
    const cached = this.resultsCacheTtl.toSeconds() > 0;
    const authorizer = new apigateway.RequestAuthorizer(scope, id, {
      handler: this.handlerFor(scope, id),
      identitySources: cached ? [apigateway.IdentitySource.header('Authorization')] : [],
      resultsCacheTtl: this.resultsCacheTtl,
    });
    // Uncached with no identity source: leave the property out, not an empty string.
    if (!cached) (authorizer.node.defaultChild as apigateway.CfnAuthorizer).addPropertyDeletionOverride('IdentitySource');
    return authorizer;
  }

  httpAuthorizer(scope: Construct, id = 'LatchkeyHttpAuthorizer'): HttpLambdaAuthorizer {
    // When cached, the route key keeps one route's answer from serving another.
    const cached = this.resultsCacheTtl.toSeconds() > 0;
    return new LatchkeyHttpLambdaAuthorizer(id, this.handlerFor(scope, id), {
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      identitySource: cached ? ['$request.header.Authorization', '$context.routeKey'] : [],
      resultsCacheTtl: this.resultsCacheTtl,
    });
  }

  metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricInvocations({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM, ...props });
  }

  metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricDuration({ period: Duration.minutes(5), statistic: cloudwatch.Stats.p(99), ...props });
  }

  metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricThrottles({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM, ...props });
  }
}

/**
 * The Latchkey Lambda authorizer: user JWTs, API keys (a tenant's client id and secret,
 * exchanged for a token) and service tokens, answering every API with one Allow for the whole
 * stage and the caller in the context. Owns the function; owns the state table unless given one.
 */
export class LatchkeyAuthorizer extends LatchkeyAuthorizerBase {
  /**
   * References a deployed Latchkey authorizer (from another stack, app or account), to attach it
   * to more APIs. The importer chooses its own identity sources and cache TTL, within the bound.
   */
  static fromAuthorizerAttributes(scope: Construct, id: string, attrs: LatchkeyAuthorizerAttributes): ILatchkeyAuthorizer {
    return new ImportedLatchkeyAuthorizer(scope, id, attrs);
  }

  /**
   * Adds problem+json gateway responses to a REST API: 401 with `WWW-Authenticate` for missing
   * or invalid credentials, 503 with `Retry-After` when the authorizer fails, 403, 400 and
   * defaults for the rest; with `allowedOrigins`, CORS headers on each.
   */
  static addGatewayResponses(api: apigateway.IRestApi, options?: GatewayResponsesOptions): apigateway.GatewayResponse[] {
    return addProblemGatewayResponses(api, options);
  }

  readonly function: lambda.Function;
  /** The shared (level-2) token cache and revocation state. */
  readonly tokenCacheTable: dynamodb.ITable;
  /** The function's log group. */
  readonly logGroup: logs.ILogGroup;
  /** Namespace of the metrics this construct derives from the function's logs. */
  readonly metricNamespace: string;
  readonly #createdTable: boolean;
  #revokeGranted = false;

  constructor(scope: Construct, id: string, props: LatchkeyAuthorizerProps) {
    super(scope, id, props, props.revocationCheckInterval);
    if (props.audiences.length === 0) throw new Error('LatchkeyAuthorizer needs at least one audience');
    // http only for a loopback issuer: the local identity provider of `npm start`.
    if (!Token.isUnresolved(props.issuer) && !/^(?:https:\/\/[^\s]+|http:\/\/(?:127\.0\.0\.1|localhost)(?::\d+)?\/[^\s]*)$/.test(props.issuer)) {
      throw new Error(`issuer must be an https URL (http only for localhost), got "${props.issuer}"`);
    }
    if (!existsSync(`${AUTHORIZER_ASSET_DIR}/index.mjs`)) {
      throw new Error(`the pre-built authorizer is missing from ${AUTHORIZER_ASSET_DIR}: this copy of @latchkey/cdk was not built (npm run build)`);
    }
    const decisionBudget = props.decisionBudget ?? Duration.millis(DECISION_BUDGET_MS.default);
    const budgetMs = decisionBudget.toMilliseconds();
    if (budgetMs < DECISION_BUDGET_MS.min || budgetMs > DECISION_BUDGET_MS.max) {
      throw new Error(`decisionBudget must be between ${DECISION_BUDGET_MS.min} and ${DECISION_BUDGET_MS.max} ms, got ${budgetMs} ms`);
    }
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logLevel = (props.logLevel ?? 'INFO').toUpperCase();
    if (!LOG_LEVELS.includes(logLevel)) throw new Error(`logLevel must be one of ${LOG_LEVELS.join(', ')}, got "${props.logLevel}"`);

    this.#createdTable = props.tokenCacheTable === undefined;
    this.tokenCacheTable =
      props.tokenCacheTable ??
      new dynamodb.Table(this, 'TokenCache', {
        partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
        timeToLiveAttribute: 'ttl',
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        removalPolicy,
      });
    // The principal-state feed every authorizer container syncs (functions/core/principal-state.ts).
    if (this.tokenCacheTable instanceof dynamodb.Table) {
      this.tokenCacheTable.addGlobalSecondaryIndex({
        indexName: STATE_FEED_INDEX,
        partitionKey: { name: 'feed', type: dynamodb.AttributeType.STRING },
        sortKey: { name: 'changedAt', type: dynamodb.AttributeType.NUMBER },
        // Only what a state needs: "last used" writes to the same items then cost no index write.
        projectionType: dynamodb.ProjectionType.INCLUDE,
        nonKeyAttributes: [...STATE_FEED_ATTRIBUTES],
      });
    }

    // Only what is set: the function's configuration owns every default.
    const optional: Record<string, string | undefined> = {
      ALGORITHMS: props.algorithms?.join(','),
      TENANT_CLAIM: props.tenantClaim,
      ROLES_CLAIM: props.rolesClaim,
      TOKEN_ENDPOINT: props.tokenEndpoint,
      JWKS_URI: props.jwksUri,
    };
    const environment: Record<string, string> = {
      ...props.environment,
      ...(Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) as Record<string, string>),
      ISSUER: props.issuer,
      AUDIENCE: props.audiences.join(','),
      TOKEN_CACHE_TABLE: this.tokenCacheTable.tableName,
      REVOCATION_CHECK_S: String(this.revocationCheckInterval.toSeconds()),
      DECISION_BUDGET_MS: String(budgetMs),
      LOG_LEVEL: logLevel,
      POWERTOOLS_SERVICE_NAME: 'latchkey-authorizer',
    };

    // Cold start is the authorizer's latency budget: every request waits for it. The shipped
    // bundle is split, so the API-key path and the AWS SDK behind it (imported lazily) are
    // chunks a container parses only on its first API-key request; and without
    // --enable-source-maps Node does not parse the source maps at import. The maps are still
    // shipped next to each file for debugging a stack trace after the fact.
    this.function = latchkeyFunction(this, 'Function', {
      code: lambda.Code.fromAsset(AUTHORIZER_ASSET_DIR),
      description: 'Latchkey authorizer: JWTs, API keys and service tokens',
      memorySize: props.memorySize ?? 1024,
      // Derived from the decision budget unless set: the function answers 503 itself before Lambda's timeout.
      timeout: props.timeout ?? authorizerTimeout(decisionBudget),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      tracing: props.tracing,
      // Plain console lines, formatted as JSON and filtered by Lambda: no logger to import at cold start.
      applicationLogLevel: logLevel as lambda.ApplicationLogLevel,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      environment,
      enableSourceMaps: false,
    });
    this.logGroup = this.function.logGroup;

    iam.Grant.addToPrincipal({
      grantee: this.function,
      actions: AUTHORIZER_CACHE_ACTIONS,
      resourceArns: [this.tokenCacheTable.tableArn],
    });
    iam.Grant.addToPrincipal({ grantee: this.function, actions: ['dynamodb:Query'], resourceArns: [`${this.tokenCacheTable.tableArn}/index/${STATE_FEED_INDEX}`] });

    this.metricNamespace = `Latchkey/${Stack.of(this).stackName}`;
    // Lambda's Errors metric also counts every `Unauthorized` (a thrown error by API Gateway's
    // contract), so failures are counted from the logs instead: the two messages the handler
    // writes before answering 503, and runtime-level timeouts and crashes.
    new logs.MetricFilter(this, 'FailureLogs', {
      logGroup: this.logGroup,
      metricNamespace: this.metricNamespace,
      metricName: 'AuthorizerFailures',
      filterPattern: logs.FilterPattern.any(
        logs.FilterPattern.stringValue('$.message', '=', 'authorizer failure'),
        logs.FilterPattern.stringValue('$.message', '=', 'unavailable'),
      ),
      metricValue: '1',
      defaultValue: 0,
    });
    new logs.MetricFilter(this, 'RuntimeFailureLogs', {
      logGroup: this.logGroup,
      metricNamespace: this.metricNamespace,
      metricName: 'AuthorizerFailures',
      filterPattern: logs.FilterPattern.anyTerm('Task timed out', 'Runtime.ExitError', 'Runtime.ImportModuleError'),
      metricValue: '1',
    });

    // A table created here that nobody writes revocations to is isolated: a revoked key keeps
    // working on this authorizer until its token expires. Checked at synth, when every
    // `grantRevoke` has been made.
    this.node.addValidation({
      validate: () => {
        if (this.#createdTable && !this.#revokeGranted) {
          Annotations.of(this).addWarningV2(
            '@latchkey/cdk:isolatedStateTable',
            'This LatchkeyAuthorizer created its own state table and nothing revokes keys in it: revocations made by Latchkey ' +
              "never reach it, so a revoked API key keeps working until its token expires. Pass Latchkey's table as " +
              'tokenCacheTable (dynamodb.Table.fromTableArn), or share the deployed authorizer with LatchkeyAuthorizer.fromAuthorizerAttributes.',
          );
        }
        return [];
      },
    });
  }

  protected sameEnvironmentAs(target: Stack): boolean {
    const own = Stack.of(this);
    return inEnvironmentOf(target, { account: own.account, region: own.region });
  }

  /** Requests the authorizer answered with 503 (dependency down, timeout, crash); not denials. */
  metricFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.metricNamespace,
      metricName: 'AuthorizerFailures',
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
      ...props,
    });
  }

  /**
   * Grants what tenant management needs on the token cache to revoke API keys: mark clients
   * revoked or not-before, purge their cached tokens, read when keys were last used.
   */
  grantRevoke(grantee: iam.IGrantable): iam.Grant {
    this.#revokeGranted = true;
    return iam.Grant.addToPrincipal({ grantee, actions: REVOKE_CACHE_ACTIONS, resourceArns: [this.tokenCacheTable.tableArn] });
  }

  /**
   * Lets API Gateway APIs in another account invoke the function (the owner's half of a
   * cross-account attachment; the importer's stack cannot grant it). Limited to the
   * authorizers of `apiId` when given, else of any API in that account, in this stack's region.
   */
  allowInvokeFrom(account: string, apiId?: string): void {
    if (!Token.isUnresolved(account) && !/^\d{12}$/.test(account)) throw new Error(`allowInvokeFrom: account must be a 12-digit AWS account id, got "${account}"`);
    if (apiId !== undefined && !Token.isUnresolved(apiId) && !/^[a-z0-9]{10}$/.test(apiId)) {
      throw new Error(`allowInvokeFrom: apiId must be an API Gateway API id (10 lower-case letters and digits), got "${apiId}"`);
    }
    const stack = Stack.of(this);
    this.function.addPermission(`InvokeFrom${account}${apiId ?? 'AnyApi'}`, {
      principal: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      sourceAccount: account,
      sourceArn: stack.formatArn({ service: 'execute-api', account, resource: apiId ?? '*', resourceName: 'authorizers/*' }),
    });
  }
}

class ImportedLatchkeyAuthorizer extends LatchkeyAuthorizerBase {
  readonly function: lambda.IFunction;
  readonly tokenCacheTable: dynamodb.ITable | undefined;
  readonly #sameEnvironment: boolean | undefined;
  readonly #arnEnv: { account?: string; region?: string };

  constructor(scope: Construct, id: string, attrs: LatchkeyAuthorizerAttributes) {
    super(scope, id, attrs, attrs.revocationCheckInterval);
    this.#sameEnvironment = attrs.sameEnvironment;
    this.#arnEnv = envOfArn(attrs.functionArn);
    const same = this.sameEnvironmentAs(Stack.of(this));
    // In another environment the owner grants invoke permissions (allowInvokeFrom); adding
    // them here would emit a permission on a function CloudFormation cannot reach.
    this.function = lambda.Function.fromFunctionAttributes(this, 'Function', { functionArn: attrs.functionArn, sameEnvironment: same, skipPermissions: !same });
    this.tokenCacheTable = attrs.tokenCacheTableArn === undefined ? undefined : dynamodb.Table.fromTableArn(this, 'TokenCache', attrs.tokenCacheTableArn);
  }

  protected sameEnvironmentAs(target: Stack): boolean {
    return this.#sameEnvironment ?? inEnvironmentOf(target, this.#arnEnv);
  }
}
