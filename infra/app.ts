/**
 * CDK entry point (`cdk.json`: `npx tsx infra/app.ts`). Configuration comes from `latchkey:*`
 * context keys, documented in `latchkey-app.ts`; without any, placeholders let `cdk synth` run.
 */
import { App } from 'aws-cdk-lib';
import { buildAuthorizerAsset } from './bundling.js';
import { buildLatchkeyApp, configFromContext } from './latchkey-app.js';

// The stack deploys @latchkey/cdk's pre-built authorizer: build it from the current source first.
buildAuthorizerAsset();

const app = new App();
const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;
buildLatchkeyApp(app, configFromContext(app.node), account && region ? { account, region } : undefined);
app.synth();
