/** Flushes a REST API stage's authorizer cache (FlushStageAuthorizersCache), used on revocation. */
import { APIGatewayClient, FlushStageAuthorizersCacheCommand } from '@aws-sdk/client-api-gateway';

export function authorizerCacheFlusher(restApiId: string, stageName: string, client = new APIGatewayClient({ maxAttempts: 2 })): () => Promise<void> {
  return async () => {
    await client.send(new FlushStageAuthorizersCacheCommand({ restApiId, stageName }));
  };
}
