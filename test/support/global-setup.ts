/**
 * Vitest global setup: one DynamoDB Local for the whole run.
 *
 * Test files reach it through the environment the AWS SDK reads by itself
 * (AWS_ENDPOINT_URL_DYNAMODB, AWS_REGION, dummy credentials): this runs in the main process
 * before any worker is forked, and forked workers inherit process.env. The endpoint is also
 * provided as `inject('dynamoDbEndpoint')`.
 */
import type { TestProject } from 'vitest/node';
import buildAssets from './build-assets.js';
import { startDynamoDbLocal } from '../../infra/local/dynamodb-local.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoDbEndpoint: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  buildAssets();
  const ddb = await startDynamoDbLocal();
  project.provide('dynamoDbEndpoint', ddb.endpoint);
  process.env.AWS_ENDPOINT_URL_DYNAMODB = ddb.endpoint;
  process.env.AWS_REGION = 'us-east-1';
  // Dummy credentials on purpose: even a developer's real ones must never reach AWS from tests.
  process.env.AWS_ACCESS_KEY_ID = 'local';
  process.env.AWS_SECRET_ACCESS_KEY = 'local';
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  // The SDK's documented switch for its "Node 22 will be required in 2027" notice, printed per worker.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return () => ddb.stop();
}
