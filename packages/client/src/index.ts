/**
 * A typed client of the Latchkey management API: openapi-fetch over the types openapi-typescript
 * generates from `openapi.json`. It adds what every caller needs:
 * - auth: an API key (`X-Api-Key`), a bearer token (a string, or a function for fresh tokens),
 *   or a key's client id and secret (Basic);
 * - an `Idempotency-Key` on every POST that has none, kept across retries;
 * - retries with back-off on 429 and 503, honouring `Retry-After` (sleep injectable for tests);
 * - problem+json answers thrown as `LatchkeyProblem`, so `data` is the answer when a call returns.
 */
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema.js';

export type { components, paths } from './schema.js';
export type Schemas = components['schemas'];
export type Tenant = Schemas['Tenant'];
export type ApiKey = Schemas['ApiKey'];
export type ApiKeyWithSecret = Schemas['ApiKeyWithSecret'];
export type User = Schemas['User'];
export type Me = Schemas['Me'];

/** Every problem `type` URI the API documents. */
export type ProblemTypeUri = { [K in keyof Schemas]: K extends 'Problem' ? never : K extends `${string}Problem` ? Schemas[K]['type'] : never }[keyof Schemas];

export const PROBLEM_BASE = 'https://latchkey.dev/problems/';

/** An RFC 9457 answer of the API (or of the gateway in front of it), thrown by every call. */
export class LatchkeyProblem extends Error {
  /** The problem `type` URI (`https://latchkey.dev/problems/not-found`). */
  readonly type: ProblemTypeUri | string;
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  /** `Retry-After` in seconds, when the answer gave one. */
  readonly retryAfterS: number | undefined;
  /** The whole body: extensions such as `errors` or `requiredScope` are here. */
  readonly body: Readonly<Record<string, unknown>>;

  constructor(status: number, body: Record<string, unknown>, retryAfterS: number | undefined) {
    const type = typeof body.type === 'string' ? body.type : 'about:blank';
    const title = typeof body.title === 'string' ? body.title : `HTTP ${status}`;
    const detail = typeof body.detail === 'string' ? body.detail : undefined;
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'LatchkeyProblem';
    this.type = type;
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfterS = retryAfterS;
    this.body = body;
  }

  /** True when the problem is of this kind: `p.is('not-found')`. */
  is(slug: string): boolean {
    return this.type === PROBLEM_BASE + slug;
  }
}

export type LatchkeyAuth =
  | { apiKey: string }
  | { bearer: string | (() => string | Promise<string>) }
  | { clientId: string; clientSecret: string };

export interface LatchkeyClientOptions {
  /** The stage's base URL, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/v1`. */
  baseUrl: string;
  /** Omit for the calls that need none (`GET /openapi.json`). */
  auth?: LatchkeyAuth;
  /**
   * Retries after a 429 or 503.
   * @default 3
   */
  maxRetries?: number;
  /**
   * First back-off step when the answer has no `Retry-After`; doubled each retry, with full jitter.
   * @default 250
   */
  baseDelayMs?: number;
  /**
   * A `Retry-After` longer than this is not waited for: the problem is thrown instead.
   * @default 30
   */
  maxRetryAfterS?: number;
  /** @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). @default Math.random */
  random?: () => number;
  /** @default crypto.randomUUID */
  idempotencyKey?: () => string;
  /** @default globalThis.fetch */
  fetch?: (request: Request) => Promise<Response>;
}

const RETRYABLE = new Set([429, 503]);

/** `Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function retryAfterSeconds(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  // An HTTP date names its day and month; a bare `-1` must not parse as a year.
  const at = /^[A-Za-z]{3}, /.test(v) ? Date.parse(v) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** `Authorization: Basic` of a client id and secret, each form-url-encoded first (RFC 6749 §2.3.1). */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${btoa(`${enc(clientId)}:${enc(clientSecret)}`)}`;
}

function retryingFetch(o: LatchkeyClientOptions): (request: Request) => Promise<Response> {
  const base = o.fetch ?? ((r: Request) => globalThis.fetch(r));
  const maxRetries = o.maxRetries ?? 3;
  const baseDelayMs = o.baseDelayMs ?? 250;
  const maxRetryAfterS = o.maxRetryAfterS ?? 30;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = o.random ?? Math.random;
  return async (request) => {
    for (let attempt = 0; ; attempt++) {
      // A clone per attempt: the body of a request can be read once.
      const response = await base(request.clone());
      if (!RETRYABLE.has(response.status) || attempt >= maxRetries) return response;
      const retryAfter = retryAfterSeconds(response.headers.get('retry-after'));
      if (retryAfter !== undefined && retryAfter > maxRetryAfterS) return response;
      const backoff = Math.floor(random() * baseDelayMs * 2 ** attempt);
      await response.body?.cancel();
      await sleep(retryAfter !== undefined ? retryAfter * 1000 : backoff);
    }
  };
}

function authMiddleware(auth: LatchkeyAuth | undefined, idempotencyKey: () => string): Middleware {
  return {
    async onRequest({ request }) {
      if (auth && 'apiKey' in auth) request.headers.set('X-Api-Key', auth.apiKey);
      else if (auth && 'bearer' in auth) request.headers.set('Authorization', `Bearer ${typeof auth.bearer === 'function' ? await auth.bearer() : auth.bearer}`);
      else if (auth) request.headers.set('Authorization', basicAuthorization(auth.clientId, auth.clientSecret));
      // Set once, before the retrying fetch: every retry of this call carries the same key.
      if (request.method === 'POST' && !request.headers.has('Idempotency-Key')) request.headers.set('Idempotency-Key', idempotencyKey());
      return request;
    },
    async onResponse({ response }) {
      if (response.ok) return undefined;
      const text = await response.clone().text();
      let body: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(text);
        body = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : { detail: text };
      } catch {
        body = { title: `HTTP ${response.status}`, detail: text.slice(0, 500) };
      }
      throw new LatchkeyProblem(response.status, body, retryAfterSeconds(response.headers.get('retry-after')));
    },
  };
}

export type LatchkeyClient = Client<paths>;

/** A client whose calls resolve with `{ data, response }` on success and throw `LatchkeyProblem` otherwise. */
export function createLatchkeyClient(o: LatchkeyClientOptions): LatchkeyClient {
  const client = createClient<paths>({ baseUrl: o.baseUrl.replace(/\/+$/, ''), fetch: retryingFetch(o) });
  client.use(authMiddleware(o.auth, o.idempotencyKey ?? (() => globalThis.crypto.randomUUID())));
  return client;
}

/** The answer of a call that has a body (`const me = await data(lk.GET('/me'))`). */
export async function data<T>(call: Promise<{ data?: T; response: Response }>): Promise<T> {
  const r = await call;
  if (r.data === undefined) throw new Error(`${r.response.status} answered without a body`);
  return r.data;
}
