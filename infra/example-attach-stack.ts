/**
 * An example of a product team's stack reusing the Latchkey authorizer: one REST API and one
 * HTTP API, each with a GET /orders route, behind the same authorizer function.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { LatchkeyAuthorizer } from '../packages/cdk/src/index.js';
import { latchkeyParameterNames } from './latchkey-stack.js';
import { suppressLatchkeyRuntime } from './nag.js';

export interface ExampleAttachStackProps extends StackProps {
  /**
   * Name of the deployed Latchkey stack (same account and region) whose authorizer this attaches,
   * found through the SSM parameters it writes.
   */
  readonly latchkeyStackName: string;
}

/** Answers with the tenant the authorizer put in the context (REST: flat; HTTP API: under `lambda`). */
const ORDERS_CODE = `
exports.handler = async (event) => {
  const a = (event.requestContext && event.requestContext.authorizer) || {};
  const ctx = a.lambda || a;
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenantId: ctx.tenantId || null, authMethod: ctx.authMethod || null, orders: [] }),
  };
};
`;

export class ExampleAttachStack extends Stack {
  readonly restApi: apigateway.RestApi;
  readonly httpApi: apigwv2.HttpApi;
  readonly ordersFunction: lambda.Function;

  constructor(scope: Construct, id: string, props: ExampleAttachStackProps) {
    super(scope, id, props);
    const parameters = latchkeyParameterNames(props.latchkeyStackName);
    const authorizer = LatchkeyAuthorizer.fromAuthorizerAttributes(this, 'Latchkey', {
      functionArn: ssm.StringParameter.valueForStringParameter(this, parameters.authorizerFunctionArn),
    });

    const fnLogs = new logs.LogGroup(this, 'OrdersFunctionLogs', { retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
    const role = new iam.Role(this, 'OrdersFunctionRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    fnLogs.grantWrite(role);
    this.ordersFunction = new lambda.Function(this, 'OrdersFunction', {
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(ORDERS_CODE),
      memorySize: 128,
      timeout: Duration.seconds(5),
      role,
      logGroup: fnLogs,
      description: 'Example: a tenant-scoped route behind the Latchkey authorizer',
    });

    // REST API: a RequestAuthorizer of its own, invoking the shared function.
    const restLogs = new logs.LogGroup(this, 'RestAccessLogs', { retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
    this.restApi = new apigateway.RestApi(this, 'OrdersRestApi', {
      restApiName: `${this.stackName}-orders`,
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      // The account-level CloudWatch role is set by the Latchkey stack, deployed first.
      cloudWatchRole: false,
      deployOptions: {
        stageName: 'v1',
        tracingEnabled: true,
        metricsEnabled: true,
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        accessLogDestination: new apigateway.LogGroupLogDestination(restLogs),
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields(),
      },
    });
    LatchkeyAuthorizer.addGatewayResponses(this.restApi);
    this.restApi.root.addResource('orders').addMethod('GET', new apigateway.LambdaIntegration(this.ordersFunction), {
      authorizer: authorizer.restAuthorizer(this, 'OrdersRestAuthorizer'),
      authorizationType: apigateway.AuthorizationType.CUSTOM,
    });

    // HTTP API: a simple-response Lambda authorizer on the same function.
    const httpLogs = new logs.LogGroup(this, 'HttpAccessLogs', { retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
    this.httpApi = new apigwv2.HttpApi(this, 'OrdersHttpApi', { apiName: `${this.stackName}-orders-http`, createDefaultStage: false });
    this.httpApi.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(httpLogs),
        format: apigateway.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            routeKey: '$context.routeKey',
            status: '$context.status',
            tenantId: '$context.authorizer.tenantId',
            authMethod: '$context.authorizer.authMethod',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });
    this.httpApi.addRoutes({
      path: '/orders',
      methods: [apigwv2.HttpMethod.GET],
      integration: new HttpLambdaIntegration('OrdersIntegration', this.ordersFunction),
      authorizer: authorizer.httpAuthorizer(this, 'OrdersHttpAuthorizer'),
    });

    new CfnOutput(this, 'RestOrdersUrl', { value: this.restApi.urlForPath('/orders') });
    new CfnOutput(this, 'HttpOrdersUrl', { value: `${this.httpApi.apiEndpoint}/orders` });

    suppressLatchkeyRuntime(this);
    NagSuppressions.addResourceSuppressions(
      this.restApi,
      [
        {
          id: 'AwsSolutions-APIG2',
          reason: 'The example GET /orders takes no body or parameters, so there is nothing for an API Gateway request validator to check.',
        },
        {
          id: 'AwsSolutions-APIG3',
          reason: 'Example stack showing how to attach the Latchkey authorizer; a WAF web ACL is a choice for the team deploying it, as for the Latchkey API.',
        },
        {
          id: 'AwsSolutions-COG4',
          reason: 'GET /orders is protected by the shared Latchkey Lambda authorizer (Auth0 JWTs, API keys, service tokens), not a Cognito user pool.',
        },
      ],
      true,
    );
  }
}
