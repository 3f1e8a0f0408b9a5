#!/usr/bin/env node
import * as cdk from 'aws-cdk-lib/core';
import { OrdersApiStack } from '../lib/orders-api-stack';

const app = new cdk.App();
const context = (key: string): string => {
  const value: unknown = app.node.tryGetContext(`latchkey:${key}`);
  if (typeof value !== 'string' || value === '') throw new Error(`context latchkey:${key} is required (cdk.json or -c)`);
  return value;
};

new OrdersApiStack(app, 'OrdersApi', {
  latchkeyAuthorizerFunctionArn: context('authorizerFunctionArn'),
  latchkeyStateTableArn: context('stateTableArn'),
  issuer: context('issuer'),
  audiences: context('audience').split(','),
  /* Uncomment to deploy to the account and region of the current CLI configuration. */
  // env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
