/**
 * Maps verified token claims to a Principal. Every claim is type-checked; a claim of an
 * unexpected shape refuses the token rather than being guessed at. Claims are read only as
 * own properties, so `__proto__` and friends are never taken for data.
 */
import type { JWTPayload } from 'jose';
import type { JwtConfig } from './config.js';
import { CredentialsError } from './errors.js';
import type { AuthMethod, Principal } from './principal.js';
import { isTenantId } from './tenant-id.js';

const MAX_ID_LEN = 256;
const MAX_LIST = 200;
// Roles reach the handlers joined with commas: a role may hold neither a comma nor white space.
const ROLE = /^[\x21-\x2b\x2d-\x7e]{1,128}$/;
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]{1,256}$/; // RFC 6749 scope-token

const bad = (claim: string, why: string) => new CredentialsError('ERR_CLAIM_INVALID', `claim ${claim} ${why}`);

function own(payload: JWTPayload, name: string): unknown {
  return Object.hasOwn(payload, name) ? (payload as Record<string, unknown>)[name] : undefined;
}

function optionalString(payload: JWTPayload, name: string): string | undefined {
  const v = own(payload, name);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID_LEN) throw bad(name, 'must be a non-empty string');
  return v;
}

function stringList(payload: JWTPayload, name: string, item: RegExp): string[] {
  const v = own(payload, name);
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_LIST || !v.every((x) => typeof x === 'string' && item.test(x))) {
    throw bad(name, 'must be an array of strings');
  }
  return v as string[];
}

export function principalFromClaims(payload: JWTPayload, cfg: JwtConfig, authMethod: AuthMethod): Principal {
  const subject = optionalString(payload, 'sub');
  if (subject === undefined) throw bad('sub', 'is required');
  const tenant = own(payload, cfg.tenantClaim);
  if (tenant !== undefined && !isTenantId(tenant)) throw bad(cfg.tenantClaim, 'is not a valid tenant id');
  const roles = stringList(payload, cfg.rolesClaim, ROLE);
  const scopeClaim = own(payload, 'scope');
  if (scopeClaim !== undefined && typeof scopeClaim !== 'string') throw bad('scope', 'must be a string');
  const clientId = optionalString(payload, 'azp') ?? optionalString(payload, 'client_id');
  const machine = isMachineToken(payload, subject, clientId);
  const scopes = new Set<string>();
  for (const s of (scopeClaim ?? '').split(' ')) {
    if (s === '') continue;
    if (!SCOPE.test(s)) throw bad('scope', 'contains an invalid scope');
    // A machine's scopes are its grant; a user's only count where RBAC makes them mean something.
    if (machine || cfg.userScopes === 'trust') scopes.add(s);
  }
  for (const p of stringList(payload, 'permissions', SCOPE)) scopes.add(p);
  if (scopes.size > MAX_LIST) throw bad('scope', 'names too many scopes');
  const exp = payload.exp;
  if (typeof exp !== 'number') throw bad('exp', 'is required');
  const iat = own(payload, 'iat');
  if (iat !== undefined && typeof iat !== 'number') throw bad('iat', 'must be a number');
  return {
    subject,
    tenantId: tenant as string | undefined,
    userId: machine ? undefined : subject,
    clientId,
    roles,
    scopes: [...scopes],
    authMethod,
    expiresAt: exp,
    // A token without `iat` is taken as issued at the epoch: any not-before refuses it.
    issuedAtMs: typeof iat === 'number' ? iat * 1000 : 0,
  };
}

/**
 * Client-credentials tokens have no end user: Auth0 marks them with `gty` and a
 * `<client_id>@clients` subject; RFC 9068 servers such as oidc-provider use the client id itself.
 */
function isMachineToken(payload: JWTPayload, subject: string, clientId: string | undefined): boolean {
  if (own(payload, 'gty') === 'client-credentials') return true;
  return clientId !== undefined && (subject === clientId || subject === `${clientId}@clients`);
}
