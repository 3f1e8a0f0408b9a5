/** How the caller authenticated, as handed to the API's handlers. */
export type AuthMethod = 'jwt' | 'api_key';

/** Who is calling, as the authorizer established it. */
export interface Principal {
  /** `sub` of the verified token. */
  readonly subject: string;
  /** Tenant the caller belongs to; absent for platform services without a tenant. */
  readonly tenantId: string | undefined;
  /** End user id (`sub`) for user tokens; absent for machine callers. */
  readonly userId: string | undefined;
  /** OAuth client that obtained the token (`azp` / `client_id`). */
  readonly clientId: string | undefined;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  readonly authMethod: AuthMethod;
  /** Expiry of the underlying access token, epoch seconds. */
  readonly expiresAt: number;
  /**
   * When the credential was issued, epoch ms: the token's `iat`, or for an API key the start of
   * the exchange that produced its token (0 when unknown). Compared with not-befores.
   */
  readonly issuedAtMs: number;
  /** The Latchkey key this caller authenticated with, on either path (its own bearer token too). */
  readonly keyId?: string | undefined;
}

/**
 * The authorizer context handed to handlers. API Gateway allows only scalar values,
 * so lists are joined: roles with commas, scopes with spaces. Absent values are ''.
 */
export interface AuthorizerContext {
  tenantId: string;
  userId: string;
  clientId: string;
  roles: string;
  scopes: string;
  authMethod: AuthMethod;
  keyId: string;
  [key: string]: string;
}

export function toAuthorizerContext(p: Principal): AuthorizerContext {
  return {
    tenantId: p.tenantId ?? '',
    userId: p.userId ?? '',
    clientId: p.clientId ?? '',
    roles: p.roles.join(','),
    scopes: p.scopes.join(' '),
    authMethod: p.authMethod,
    keyId: p.keyId ?? '',
  };
}

const splitList = (value: unknown, sep: RegExp): string[] =>
  typeof value === 'string' && value.length > 0 ? value.split(sep).filter((s) => s.length > 0) : [];

/**
 * The inverse of `toAuthorizerContext`, for handlers: reads only the documented keys plus the
 * `principalId` API Gateway adds beside them.
 */
export function fromAuthorizerContext(ctx: Record<string, unknown> | null | undefined): Principal | undefined {
  if (!ctx) return undefined;
  const str = (k: string): string | undefined => {
    const v = ctx[k];
    if (typeof v === 'string' && v.length > 0) return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return undefined;
  };
  const authMethod = str('authMethod');
  if (authMethod !== 'jwt' && authMethod !== 'api_key') return undefined;
  return {
    subject: str('principalId') ?? str('userId') ?? str('clientId') ?? '',
    tenantId: str('tenantId'),
    userId: str('userId'),
    clientId: str('clientId'),
    roles: splitList(ctx.roles, /,/),
    scopes: splitList(ctx.scopes, / +/),
    authMethod,
    // The context carries no expiry: the gateway only invokes handlers for a current decision.
    expiresAt: 0,
    issuedAtMs: 0,
    keyId: str('keyId'),
  };
}
