/**
 * CORS, the one rule: an answer names the caller's `Origin` in `Access-Control-Allow-Origin`
 * only when that origin is configured, and always says `Vary: Origin` so no cache hands one
 * origin's answer to another. No credentials mode: callers send `Authorization` or `X-Api-Key`,
 * never cookies. The gateway responses and the preflight use the same header lists.
 */

/** Request headers a browser may send (the preflight's `Access-Control-Allow-Headers`). */
export const CORS_ALLOW_HEADERS = ['Authorization', 'X-Api-Key', 'Content-Type', 'Idempotency-Key'] as const;
/** Answer headers a browser script may read beyond the CORS-safelisted ones. */
export const CORS_EXPOSE_HEADERS = ['Location', 'Retry-After', 'WWW-Authenticate', 'Allow'] as const;
/** How long a browser may reuse a preflight answer (Chromium caps it at 2 h). */
export const CORS_MAX_AGE_S = 3600;

const lower = (h: Record<string, string | undefined> | null | undefined, name: string): string | undefined => {
  for (const [k, v] of Object.entries(h ?? {})) if (k.toLowerCase() === name && v !== undefined) return v;
  return undefined;
};

/** The request's `Origin`, when it is one of `allowed`. */
export function allowedOrigin(allowed: readonly string[], headers: Record<string, string | undefined> | null | undefined): string | undefined {
  const origin = lower(headers, 'origin');
  return origin !== undefined && allowed.includes(origin) ? origin : undefined;
}

/** Headers every answer carries: `Vary: Origin`, plus the allow/expose pair for an allowed origin. */
export function corsHeaders(allowed: readonly string[], headers: Record<string, string | undefined> | null | undefined): Record<string, string> {
  const origin = allowedOrigin(allowed, headers);
  if (origin === undefined) return { Vary: 'Origin' };
  return { Vary: 'Origin', 'Access-Control-Allow-Origin': origin, 'Access-Control-Expose-Headers': CORS_EXPOSE_HEADERS.join(', ') };
}

/** The preflight answer's headers for a resource with methods `allow`, or none for an origin not allowed. */
export function preflightHeaders(
  allowed: readonly string[],
  headers: Record<string, string | undefined> | null | undefined,
  allow: readonly string[],
): Record<string, string> | undefined {
  const origin = allowedOrigin(allowed, headers);
  if (origin === undefined) return undefined;
  return {
    Vary: 'Origin',
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Methods': allow.join(', '),
    'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS.join(', '),
    'Access-Control-Max-Age': String(CORS_MAX_AGE_S),
  };
}

/**
 * Browser origins allowed by CORS, comma-separated: each exactly `scheme://host[:port]` (a
 * trailing `/` is dropped). Wildcards and `null` are refused: an origin is allowed by name only.
 */
const ORIGIN_SHAPE = /^https?:\/\/(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

export function parseOrigins(raw: string | readonly string[] | undefined, name = 'ALLOWED_ORIGINS'): string[] {
  const items = (typeof raw === 'string' ? raw.split(',') : (raw ?? [])).map((s) => s.trim()).filter((s) => s.length > 0);
  return [
    ...new Set(
      items.map((item) => {
        let u: URL | undefined;
        try {
          u = new URL(item);
        } catch {
          u = undefined;
        }
        const bare = item.replace(/\/$/, '');
        if (!u || !ORIGIN_SHAPE.test(bare) || u.origin !== bare.toLowerCase()) {
          throw new Error(`${name}: "${item}" is not an origin (scheme://host[:port], no path, no wildcard)`);
        }
        return u.origin;
      }),
    ),
  ];
}
