import * as cdk from 'aws-cdk-lib/core';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LatchkeyAuthorizer } from '@latchkey/cdk';
import type { Construct } from 'constructs';

export interface OrdersApiStackProps extends cdk.StackProps {
  /** `AuthorizerFunctionArn` output of the deployed Latchkey stack. */
  readonly latchkeyAuthorizerFunctionArn: string;
  /** `TokenCacheTableArn` output of the deployed Latchkey stack: where revocations are written. */
  readonly latchkeyStateTableArn: string;
  /** Latchkey's issuer and audiences, for the authorizer this stack runs itself. */
  readonly issuer: string;
  readonly audiences: string[];
}

/** Answers with the tenant the authorizer put in the context (REST: flat; HTTP API: under `lambda`). */
const ORDERS_CODE = `
exports.handler = async (event) => {
  const a = (event.requestContext && event.requestContext.authorizer) || {};
  const ctx = a.lambda || a;
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tenantId: ctx.tenantId || null, orders: [] }) };
};`;

export class OrdersApiStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props: OrdersApiStackProps) {
    super(scope, id, props);

    const orders = new lambda.Function(this, 'OrdersFunction', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline(ORDERS_CODE),
    });

    // REST API: share Latchkey's deployed authorizer function. This stack adds the invoke
    // permission for its API; from another account, Latchkey's owners call
    // `allowInvokeFrom(account, apiId)` on their side instead.
    const shared = LatchkeyAuthorizer.fromAuthorizerAttributes(this, 'Latchkey', {
      functionArn: props.latchkeyAuthorizerFunctionArn,
      tokenCacheTableArn: props.latchkeyStateTableArn,
    });
    const restApi = new apigateway.RestApi(this, 'OrdersRestApi', { deployOptions: { stageName: 'v1' } });
    restApi.root.addResource('orders').addMethod('GET', new apigateway.LambdaIntegration(orders), {
      authorizer: shared.restAuthorizer(this, 'OrdersRestAuthorizer'),
    });
    // 401 with WWW-Authenticate, 503 with Retry-After when the authorizer fails, problem+json bodies.
    LatchkeyAuthorizer.addGatewayResponses(restApi);

    // HTTP API: an authorizer function of this stack's own that reads Latchkey's state table, so
    // a key revoked in Latchkey stops working here too.
    const own = new LatchkeyAuthorizer(this, 'OrdersAuthorizer', {
      issuer: props.issuer,
      audiences: props.audiences,
      tokenCacheTable: dynamodb.Table.fromTableArn(this, 'LatchkeyState', props.latchkeyStateTableArn),
      memorySize: 512,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const httpApi = new apigwv2.HttpApi(this, 'OrdersHttpApi');
    httpApi.addRoutes({
      path: '/orders',
      methods: [apigwv2.HttpMethod.GET],
      integration: new HttpLambdaIntegration('OrdersIntegration', orders),
      authorizer: own.httpAuthorizer(this, 'OrdersHttpAuthorizer'),
    });

    new cdk.CfnOutput(this, 'RestOrdersUrl', { value: restApi.urlForPath('/orders') });
    new cdk.CfnOutput(this, 'HttpOrdersUrl', { value: `${httpApi.apiEndpoint}/orders` });
  }
}
