/**
 * The peer the authorizer is compared with: a minimal REST `REQUEST` authorizer on
 * aws-jwt-verify, answering what Latchkey answers for a user token (one Allow statement for the
 * whole API and the caller in the context). Used in-process by the decision cases and, bundled
 * like Latchkey's authorizer, by the cold-start case.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';

/** What the authorizer needs of an aws-jwt-verify verifier whose issuer and audience are set. */
export interface PeerVerifier {
  verify(jwt: string): Promise<unknown>;
}

/** Where the tenant and the roles are read from (Latchkey's namespaced claims). */
export interface PeerClaims {
  tenantClaim: string;
  rolesClaim: string;
}

export function awsJwtVerifyAuthorizer(verifier: PeerVerifier, claims: PeerClaims) {
  return async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
    const auth = event.headers?.Authorization ?? event.headers?.authorization;
    if (!auth?.startsWith('Bearer ')) throw new Error('Unauthorized');
    let p: Record<string, unknown>;
    try {
      p = (await verifier.verify(auth.slice(7))) as Record<string, unknown>;
    } catch {
      throw new Error('Unauthorized');
    }
    const colon = event.methodArn.lastIndexOf(':');
    const [apiId, stage] = event.methodArn.slice(colon + 1).split('/');
    const roles = p[claims.rolesClaim];
    return {
      principalId: String(p.sub),
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: `${event.methodArn.slice(0, colon)}:${apiId}/${stage}/*/*` }],
      },
      context: {
        tenantId: typeof p[claims.tenantClaim] === 'string' ? (p[claims.tenantClaim] as string) : '',
        userId: String(p.sub),
        clientId: typeof p.azp === 'string' ? p.azp : '',
        roles: Array.isArray(roles) ? roles.join(',') : '',
        scopes: typeof p.scope === 'string' ? p.scope : '',
        authMethod: 'jwt',
      },
    };
  };
}
