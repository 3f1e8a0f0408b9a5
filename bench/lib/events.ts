/** API Gateway REST `REQUEST` authorizer events and answer checks. */
import type { APIGatewayAuthorizerResult } from 'aws-lambda';

export { METHOD_ARN, restEvent } from '../../test/support/events.js';
import { restEvent } from '../../test/support/events.js';

export const bearerEvent = (token: string) => restEvent({ Authorization: `Bearer ${token}` });
export const basicEvent = (clientId: string, clientSecret: string) =>
  restEvent({ Authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` });

/** Throws unless the answer is an Allow policy (so a timed path that fails is noticed). */
export function assertAllow(result: unknown): void {
  const r = result as APIGatewayAuthorizerResult | undefined;
  if (r?.policyDocument?.Statement?.[0]?.Effect !== 'Allow') throw new Error('expected an Allow policy');
}
