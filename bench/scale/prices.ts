/**
 * The price table of the cost model. AWS list prices for us-east-1 as the author knew them on
 * the date below (first pricing tier, no free tier, no savings plans): LIST PRICES TO BE CHECKED
 * against https://aws.amazon.com/api-gateway/pricing/, /lambda/pricing/ and
 * /dynamodb/pricing/on-demand/ before anyone relies on a figure. Change them here; every table
 * and the plot are recomputed from them by `npm run bench:scale`.
 */
export const PRICES = {
  takenOn: '2026-11-30',
  region: 'us-east-1',
  /** REST API requests, first 333 million a month, per million. */
  restApiPerMillion: 3.5,
  /** HTTP API requests, first 300 million a month, per million. */
  httpApiPerMillion: 1.0,
  /** Lambda requests, per million (x86 and arm64 alike). */
  lambdaRequestsPerMillion: 0.2,
  /** Lambda duration per GB-second, first tier. */
  lambdaGbSecondX86: 0.0000166667,
  lambdaGbSecondArm64: 0.0000133334,
  /** DynamoDB on-demand, per million read / write request units. */
  dynamoRruPerMillion: 0.125,
  dynamoWruPerMillion: 0.625,
} as const;

/** The authorizer runs on arm64 (infra/constructs/latchkey-function.ts). */
export const LAMBDA_GB_SECOND = PRICES.lambdaGbSecondArm64;

/**
 * Limits the model checks, from FIELD-NOTES.md and AWS's documented defaults. Auth0 figures vary
 * by plan and change; those given are the ones Latchkey's notes record.
 */
export const LIMITS = {
  auth0TokenRatePerS: { free: 30, selfService: 25, enterprise: 100 },
  /** Machine-to-machine tokens a month on Auth0's free plan (paid plans: higher, plan-specific). */
  auth0M2mTokensPerMonthFree: 1000,
  /** Applications per Auth0 tenant: each API key is one (a client per key). */
  auth0Applications: { free: 10, selfService: 100 },
  /** One DynamoDB partition: the state-feed index has ONE partition key value, `state`. */
  dynamoPartitionRruPerS: 3000,
  dynamoPartitionWruPerS: 1000,
  lambdaConcurrency: 1000,
  /** API Gateway's default account throttle per region (soft limit), requests per second. */
  apiGatewayRps: 10_000,
} as const;
