/**
 * The Latchkey deployment: the authorizer, the management REST API (tenants, API keys, users)
 * behind it, its tables and the Auth0 Management API secret.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { LatchkeyAuthorizer } from './constructs/latchkey-authorizer.js';
import { latchkeyFunction } from './constructs/latchkey-function.js';
import { suppressLatchkeyRuntime } from './nag.js';

export const AUTH0_SECRET_NAME = 'latchkey/auth0-management';

export interface LatchkeyStackProps extends StackProps {
  /** Exact `iss` of accepted tokens, e.g. `https://tenant.eu.auth0.com/`. */
  readonly issuer: string;
  /** Accepted audiences; the first is granted to API keys' clients. */
  readonly audiences: string[];
  /** Auth0 tenant domain (`tenant.eu.auth0.com`), written into the created management secret. */
  readonly auth0Domain: string;
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
   * @default - a secret named `latchkey/auth0-management` is created; fill in `clientId` and `clientSecret`
   */
  readonly managementSecretName?: string;
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
   * Removal policy of the tables and log groups holding state.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

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
  readonly managementSecret: secretsmanager.ISecret;
  readonly tenantsFunction: lambda.Function;
  readonly usersFunction: lambda.Function;
  /** Alarms without actions: add an SNS topic or other action where you deploy. */
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: LatchkeyStackProps) {
    super(scope, id, props);
    const stageName = props.stageName ?? 'v1';
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.authorizer = new LatchkeyAuthorizer(this, 'Authorizer', {
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

    let secretId: string;
    if (props.managementSecretName !== undefined) {
      this.managementSecret = secretsmanager.Secret.fromSecretNameV2(this, 'Auth0ManagementSecret', props.managementSecretName);
      secretId = props.managementSecretName;
    } else {
      // The generated clientSecret is a placeholder: overwrite the secret with the Auth0
      // Management API client's real id and secret after the first deployment.
      const secret = new secretsmanager.Secret(this, 'Auth0ManagementSecret', {
        secretName: AUTH0_SECRET_NAME,
        description: 'Latchkey: Auth0 Management API client credentials { domain, clientId, clientSecret }',
        generateSecretString: {
          secretStringTemplate: JSON.stringify({ domain: props.auth0Domain, clientId: '' }),
          generateStringKey: 'clientSecret',
          excludePunctuation: true,
          passwordLength: 64,
        },
        removalPolicy: RemovalPolicy.RETAIN,
      });
      this.managementSecret = secret;
      secretId = secret.secretArn;
    }

    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logs.RetentionDays.ONE_YEAR, removalPolicy });
    const restAuthorizer = this.authorizer.restAuthorizer(this, 'RestAuthorizer');
    this.api = new apigateway.RestApi(this, 'Api', {
      restApiName: 'latchkey-api',
      description: 'Latchkey tenant, API key and user management',
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      cloudWatchRole: true,
      defaultMethodOptions: { authorizer: restAuthorizer, authorizationType: apigateway.AuthorizationType.CUSTOM },
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
    LatchkeyAuthorizer.addGatewayResponses(this.api);

    const service = (name: string) => ({ POWERTOOLS_SERVICE_NAME: name });
    // Split like the authorizer: the Auth0 SDK, Secrets Manager and Powertools idempotency are
    // imported on first use, so a cold start parses only the code its first request needs.
    this.tenantsFunction = latchkeyFunction(this, 'TenantsFunction', {
      entry: 'functions/tenants/handler.ts',
      description: 'Latchkey tenant and API key management',
      splitting: true,
      logRemovalPolicy: removalPolicy,
      environment: {
        ...service('latchkey-tenants'),
        TENANTS_TABLE: this.tenantsTable.tableName,
        TOKEN_CACHE_TABLE: this.authorizer.tokenCacheTable.tableName,
        IDEMPOTENCY_TABLE: this.idempotencyTable.tableName,
        AUTH0_SECRET_ID: secretId,
        AUDIENCE: props.audiences.join(','),
        IDP: 'auth0',
        // The id only: referencing the stage (a construct) would close a cycle
        // function -> stage -> deployment -> methods -> function.
        REST_API_ID: this.api.restApiId,
        STAGE_NAME: stageName,
      },
    });
    this.usersFunction = latchkeyFunction(this, 'UsersFunction', {
      entry: 'functions/users/handler.ts',
      description: 'Latchkey user management',
      splitting: true,
      logRemovalPolicy: removalPolicy,
      environment: {
        ...service('latchkey-users'),
        TENANTS_TABLE: this.tenantsTable.tableName,
        IDEMPOTENCY_TABLE: this.idempotencyTable.tableName,
        AUTH0_SECRET_ID: secretId,
        IDP: 'auth0',
      },
    });

    this.grantPermissions(stageName);
    this.addRoutes();

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
    new CfnOutput(this, 'AuthorizerFunctionArn', {
      value: this.authorizer.function.functionArn,
      description: 'Attach to other APIs with LatchkeyAuthorizer.fromFunctionArn',
    });
    new CfnOutput(this, 'TokenCacheTableName', { value: this.authorizer.tokenCacheTable.tableName });
    new CfnOutput(this, 'Auth0SecretName', {
      value: props.managementSecretName ?? AUTH0_SECRET_NAME,
      description: 'Secret holding { domain, clientId, clientSecret } of the Auth0 Management API client',
    });

    this.addNagSuppressions(props.managementSecretName !== undefined);
  }

  private grantPermissions(stageName: string): void {
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
    this.managementSecret.grantRead(tenants);
    // FlushStageAuthorizersCache on this API's stage only, so a revocation is not served from
    // API Gateway's authorizer cache.
    tenants.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['apigateway:DELETE'],
        resources: [this.formatArn({ service: 'apigateway', account: '', resource: `/restapis/${this.api.restApiId}/stages/${stageName}/cache/authorizers` })],
      }),
    );

    users.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:GetItem'], resources: [this.tenantsTable.tableArn] }));
    users.addToRolePolicy(new iam.PolicyStatement({ actions: idempotencyActions, resources: [this.idempotencyTable.tableArn] }));
    this.managementSecret.grantRead(users);
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
            'Every Latchkey method uses the Latchkey Lambda REQUEST authorizer (Auth0 JWTs, API keys, service tokens); Cognito user pools are not the identity provider.',
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
