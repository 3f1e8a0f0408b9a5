/**
 * Tenant ids travel in tokens, paths, DynamoDB keys and provider queries, so they are
 * restricted to a conservative alphabet: letters, digits, `_` and `-`, 1–64 characters,
 * starting with a letter or digit.
 */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function isTenantId(value: unknown): value is string {
  return typeof value === 'string' && TENANT_ID_PATTERN.test(value);
}
