/**
 * `LatchkeyAuthorizer`: the Latchkey authorizer function and its token cache, attachable to any
 * number of REST APIs (one `RequestAuthorizer` each) and HTTP APIs (one `HttpLambdaAuthorizer`
 * each), all invoking the same function.
 */
import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType, type HttpLambdaAuthorizerProps } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import { DECISION_BUDGET_MS, DEFAULT_ROLES_CLAIM, DEFAULT_TENANT_CLAIM } from '../../functions/core/config.js';
import { addProblemGatewayResponses } from './gateway-responses.js';
import { latchkeyFunction } from './latchkey-function.js';

/** Upper bound of any cache in front of revocation: a revoked API key stops working within it. */
export const MAX_REVOCATION_DELAY = Duration.seconds(60);

/** Time the function gets beyond the decision budget: answering 503 itself, and a slow runtime. */
const TIMEOUT_MARGIN_S = 2;

/** The authorizer function's timeout for a decision budget: the budget, rounded up, plus margin. */
export function authorizerTimeout(decisionBudget: Duration): Duration {
  return Duration.seconds(Math.ceil(decisionBudget.toMilliseconds() / 1000) + TIMEOUT_MARGIN_S);
}

/** Actions the authorizer needs on the token cache: read, cache, lease, check in. Never Scan. */
const AUTHORIZER_CACHE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
/** Actions key management needs on the token cache: revoke, set not-before, purge tokens, read last use. */
const REVOKE_CACHE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
];

/** How API Gateway chooses what to send to the authorizer and how long it reuses the answer. */
export interface LatchkeyAuthorizerCacheOptions {
  /**
   * Accept API keys in an `X-Api-Key` header as well as in `Authorization`.
   *
   * A REST `REQUEST` authorizer with result caching calls the function only when *every*
   * identity source is present; otherwise API Gateway answers 401 itself. Callers send either
   * `Authorization` (Bearer JWT or Basic API key) or `X-Api-Key`, never necessarily both, so:
   * - `true`: identity sources are `Authorization` and `X-Api-Key` with caching **off**
   *   (`resultsCacheTtl` 0), so neither header is required and the function runs on every
   *   request; its in-memory caches (verified JWTs, exchanged API keys) keep that cheap.
   *   HTTP APIs get no identity source at all (they would require each one even uncached).
   * - `false`: the only identity source is `Authorization` and API Gateway caches results for
   *   `resultsCacheTtl`; API keys must then be sent as `Authorization: Basic …`.
   * @default true
   */
  readonly acceptApiKeyHeader?: boolean;
  /**
   * How long API Gateway caches an authorizer result, keyed by the identity sources. At most
   * 60 s, the bound on how long a revoked API key keeps working. Only with
   * `acceptApiKeyHeader: false`; setting it above 0 with `acceptApiKeyHeader: true` is an error.
   * @default Duration.seconds(30) when `acceptApiKeyHeader` is false, else Duration.seconds(0)
   */
  readonly resultsCacheTtl?: Duration;
}

export interface LatchkeyAuthorizerProps extends LatchkeyAuthorizerCacheOptions {
  /** Exact `iss` of accepted tokens, e.g. `https://tenant.eu.auth0.com/` (Auth0 keeps the trailing slash). */
  readonly issuer: string;
  /** Accepted audiences (API identifiers); the first one is requested when exchanging API keys. */
  readonly audiences: string[];
  /**
   * Accepted JWS algorithms.
   * @default ['RS256']
   */
  readonly algorithms?: string[];
  /**
   * Namespaced claim holding the tenant id.
   * @default 'https://latchkey.dev/tenant_id'
   */
  readonly tenantClaim?: string;
  /**
   * Namespaced claim holding the roles.
   * @default 'https://latchkey.dev/roles'
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
   * How long a cached API key is trusted before its revocation state is read again. At most 60 s.
   * @default Duration.seconds(30)
   */
  readonly revocationCheckInterval?: Duration;
  /**
   * Every decision answers within this; a dependency that cannot answer in time gives 503 +
   * Retry-After, never 401. The function's timeout is derived from it, with margin.
   * @default Duration.seconds(3)
   */
  readonly decisionBudget?: Duration;
  /**
   * An existing token-cache table (string partition key `pk`, TTL attribute `ttl`).
   * @default - a new pay-per-request table with point-in-time recovery
   */
  readonly tokenCacheTable?: dynamodb.ITable;
  /**
   * Removal policy of the token-cache table this construct creates and of the function's logs.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Powertools log level of the function.
   * @default 'INFO'
   */
  readonly logLevel?: string;
  /**
   * Retention of the function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Entry file of the authorizer, absolute or relative to the repository root.
   * @default 'functions/authorizer/handler.ts'
   */
  readonly entry?: string;
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
  /** Whether `X-Api-Key` is an accepted credential header (and caching therefore off). */
  readonly acceptApiKeyHeader: boolean;
  /** The API Gateway result-cache TTL of the authorizers this creates. */
  readonly resultsCacheTtl: Duration;
  /**
   * A new `RequestAuthorizer` for one REST API. `scope` must be in the API's stack; a
   * `RequestAuthorizer` binds to the first API that uses it.
   */
  restAuthorizer(scope: Construct, id?: string): apigateway.RequestAuthorizer;
  /** A new simple-response authorizer for one HTTP API (it binds to the first API that uses it). */
  httpAuthorizer(id?: string): HttpLambdaAuthorizer;
}

/** Options of `LatchkeyAuthorizer.fromFunctionArn`. */
export interface LatchkeyAuthorizerAttributes extends LatchkeyAuthorizerCacheOptions {
  /** ARN of a Latchkey authorizer function in the same account and region as the importing stack. */
  readonly functionArn: string;
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
}

function resolveCache(opts: LatchkeyAuthorizerCacheOptions): ResolvedCache {
  const acceptApiKeyHeader = opts.acceptApiKeyHeader ?? true;
  const ttl = opts.resultsCacheTtl;
  if (ttl !== undefined && !Token.isUnresolved(ttl.toSeconds())) {
    if (ttl.toSeconds() > MAX_REVOCATION_DELAY.toSeconds()) {
      throw new Error(`resultsCacheTtl must be at most ${MAX_REVOCATION_DELAY.toSeconds()} s (the revocation bound), got ${ttl.toSeconds()} s`);
    }
    if (acceptApiKeyHeader && ttl.toSeconds() > 0) {
      throw new Error(
        'resultsCacheTtl must be 0 when acceptApiKeyHeader is true: a cached REQUEST authorizer requires every identity source, ' +
          'which would reject callers sending only Authorization or only X-Api-Key. Set acceptApiKeyHeader: false to cache.',
      );
    }
  }
  return { acceptApiKeyHeader, resultsCacheTtl: ttl ?? (acceptApiKeyHeader ? Duration.seconds(0) : Duration.seconds(30)) };
}

abstract class LatchkeyAuthorizerBase extends Construct implements ILatchkeyAuthorizer {
  abstract readonly function: lambda.IFunction;
  readonly acceptApiKeyHeader: boolean;
  readonly resultsCacheTtl: Duration;

  protected constructor(scope: Construct, id: string, cache: LatchkeyAuthorizerCacheOptions) {
    super(scope, id);
    const resolved = resolveCache(cache);
    this.acceptApiKeyHeader = resolved.acceptApiKeyHeader;
    this.resultsCacheTtl = resolved.resultsCacheTtl;
  }

  restAuthorizer(scope: Construct, id = 'LatchkeyAuthorizer'): apigateway.RequestAuthorizer {
    // RequestAuthorizer adds its invoke permission (scoped to the API's authorizer ARN) on the
    // handler's own stack. For an API in another stack that would make the two stacks reference
    // each other, so there the function is referenced through an import living in the API's stack.
    const handler =
      Stack.of(scope) === Stack.of(this.function)
        ? this.function
        : lambda.Function.fromFunctionAttributes(scope, `${id}Function`, { functionArn: this.function.functionArn, sameEnvironment: true });
    const identitySources = [apigateway.IdentitySource.header('Authorization')];
    if (this.acceptApiKeyHeader) identitySources.push(apigateway.IdentitySource.header('X-Api-Key'));
    return new apigateway.RequestAuthorizer(scope, id, {
      handler,
      identitySources,
      resultsCacheTtl: this.resultsCacheTtl,
    });
  }

  httpAuthorizer(id = 'LatchkeyHttpAuthorizer'): HttpLambdaAuthorizer {
    // HTTP APIs require every identity source even uncached, so with X-Api-Key accepted there
    // is none. When cached, the route key keeps one route's answer from serving another.
    let identitySource: string[] = [];
    if (this.resultsCacheTtl.toSeconds() > 0) identitySource = ['$request.header.Authorization', '$context.routeKey'];
    else if (!this.acceptApiKeyHeader) identitySource = ['$request.header.Authorization'];
    return new LatchkeyHttpLambdaAuthorizer(id, this.function, {
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      identitySource,
      resultsCacheTtl: this.resultsCacheTtl,
    });
  }
}

/**
 * The Latchkey Lambda authorizer: user JWTs, API keys (a tenant's client id and secret,
 * exchanged for a token) and service tokens, answering every API with one Allow for the whole
 * stage and the caller in the context. Owns the function and the shared token cache.
 */
export class LatchkeyAuthorizer extends LatchkeyAuthorizerBase {
  /**
   * References an authorizer function deployed elsewhere (same account and region), to attach
   * it to more APIs. The importer chooses its own identity sources and cache TTL.
   */
  static fromFunctionArn(scope: Construct, id: string, attrs: LatchkeyAuthorizerAttributes): ILatchkeyAuthorizer {
    return new ImportedLatchkeyAuthorizer(scope, id, attrs);
  }

  /**
   * Adds problem+json gateway responses to a REST API: 401 with `WWW-Authenticate` for missing
   * or invalid credentials, 503 with `Retry-After` when the authorizer fails, 403, 400 and
   * defaults for the rest.
   */
  static addGatewayResponses(api: apigateway.IRestApi): apigateway.GatewayResponse[] {
    return addProblemGatewayResponses(api);
  }

  readonly function: lambda.Function;
  /** The shared (level-2) token cache and revocation state. */
  readonly tokenCacheTable: dynamodb.ITable;
  /** The function's log group. */
  readonly logGroup: logs.ILogGroup;
  /** Namespace of the metrics this construct derives from the function's logs. */
  readonly metricNamespace: string;

  constructor(scope: Construct, id: string, props: LatchkeyAuthorizerProps) {
    super(scope, id, props);
    if (props.audiences.length === 0) throw new Error('LatchkeyAuthorizer needs at least one audience');
    // http only for a loopback issuer: the local identity provider of `npm start`.
    if (!Token.isUnresolved(props.issuer) && !/^(?:https:\/\/[^\s]+|http:\/\/(?:127\.0\.0\.1|localhost)(?::\d+)?\/[^\s]*)$/.test(props.issuer)) {
      throw new Error(`issuer must be an https URL (http only for localhost), got "${props.issuer}"`);
    }
    const revocationCheck = props.revocationCheckInterval ?? Duration.seconds(30);
    if (revocationCheck.toSeconds() > MAX_REVOCATION_DELAY.toSeconds()) {
      throw new Error(`revocationCheckInterval must be at most ${MAX_REVOCATION_DELAY.toSeconds()} s, got ${revocationCheck.toSeconds()} s`);
    }
    const decisionBudget = props.decisionBudget ?? Duration.millis(DECISION_BUDGET_MS.default);
    const budgetMs = decisionBudget.toMilliseconds();
    if (budgetMs < DECISION_BUDGET_MS.min || budgetMs > DECISION_BUDGET_MS.max) {
      throw new Error(`decisionBudget must be between ${DECISION_BUDGET_MS.min} and ${DECISION_BUDGET_MS.max} ms, got ${budgetMs} ms`);
    }
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

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

    const environment: Record<string, string> = {
      ...props.environment,
      ISSUER: props.issuer,
      AUDIENCE: props.audiences.join(','),
      ALGORITHMS: (props.algorithms ?? ['RS256']).join(','),
      TENANT_CLAIM: props.tenantClaim ?? DEFAULT_TENANT_CLAIM,
      ROLES_CLAIM: props.rolesClaim ?? DEFAULT_ROLES_CLAIM,
      TOKEN_CACHE_TABLE: this.tokenCacheTable.tableName,
      REVOCATION_CHECK_S: String(revocationCheck.toSeconds()),
      DECISION_BUDGET_MS: String(budgetMs),
      LOG_LEVEL: props.logLevel ?? 'INFO',
      POWERTOOLS_SERVICE_NAME: 'latchkey-authorizer',
    };
    if (props.tokenEndpoint !== undefined) environment.TOKEN_ENDPOINT = props.tokenEndpoint;
    if (props.jwksUri !== undefined) environment.JWKS_URI = props.jwksUri;

    this.function = latchkeyFunction(this, 'Function', {
      entry: props.entry ?? 'functions/authorizer/handler.ts',
      description: 'Latchkey authorizer: JWTs, API keys and service tokens',
      memorySize: 256,
      timeout: authorizerTimeout(decisionBudget),
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      environment,
      // Cold start is the authorizer's latency budget: every request waits for it. Split, the
      // API-key path and the AWS SDK behind it (imported lazily) are separate chunks that a
      // container parses only on its first API-key request, not on the JWT path; and without
      // --enable-source-maps Node does not parse the source maps at import. The maps are still
      // shipped next to each file for debugging a stack trace after the fact.
      splitting: true,
      enableSourceMaps: false,
    });
    this.logGroup = this.function.logGroup;

    iam.Grant.addToPrincipal({
      grantee: this.function,
      actions: AUTHORIZER_CACHE_ACTIONS,
      resourceArns: [this.tokenCacheTable.tableArn],
    });

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
    return iam.Grant.addToPrincipal({ grantee, actions: REVOKE_CACHE_ACTIONS, resourceArns: [this.tokenCacheTable.tableArn] });
  }
}

class ImportedLatchkeyAuthorizer extends LatchkeyAuthorizerBase {
  readonly function: lambda.IFunction;

  constructor(scope: Construct, id: string, attrs: LatchkeyAuthorizerAttributes) {
    super(scope, id, attrs);
    // sameEnvironment: the importer adds invoke permissions for its own APIs.
    this.function = lambda.Function.fromFunctionAttributes(this, 'Function', { functionArn: attrs.functionArn, sameEnvironment: true });
  }
}
