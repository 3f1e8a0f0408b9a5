/**
 * RFC 9457 problem details: the one shape of every error answer of the management API.
 * `type` is stable per kind of problem so clients can switch on it.
 */
export const PROBLEM_BASE = 'https://latchkey.dev/problems/';

export type ProblemSlug =
  | 'validation-error'
  | 'unsupported-media-type'
  | 'unauthorized'
  | 'forbidden'
  | 'tenant-disabled'
  | 'insufficient-scope'
  | 'not-found'
  | 'method-not-allowed'
  | 'conflict'
  | 'idempotency-key-reused'
  | 'idempotency-in-progress'
  | 'unavailable'
  | 'internal';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** An error that is answered as it is; `detail` and extensions are shown to the caller. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly slug: ProblemSlug;
  readonly title: string;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(status: number, slug: ProblemSlug, title: string, detail?: string, extensions: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    super(detail ?? title);
    this.status = status;
    this.slug = slug;
    this.title = title;
    this.extensions = extensions;
    this.headers = headers;
  }

  body(instance?: string): ProblemBody {
    return {
      type: PROBLEM_BASE + this.slug,
      title: this.title,
      status: this.status,
      ...(this.message !== this.title ? { detail: this.message } : {}),
      ...(instance ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export const badRequest = (detail: string, errors?: { path: string; message: string }[]) =>
  new HttpProblem(400, 'validation-error', 'Your request is not valid', detail, errors ? { errors } : {});
export const forbidden = (detail: string) => new HttpProblem(403, 'forbidden', 'Forbidden', detail);
export const insufficientScope = (required: string) =>
  new HttpProblem(403, 'insufficient-scope', 'Insufficient scope', `this operation needs the ${required} permission`, { requiredScope: required });
export const notFound = (what: string) => new HttpProblem(404, 'not-found', 'Not found', `${what} was not found`);
export const conflict = (detail: string) => new HttpProblem(409, 'conflict', 'Conflict', detail);
export const unavailable = (retryAfterS: number, detail = 'a dependency is unavailable; retry later') =>
  new HttpProblem(503, 'unavailable', 'Service unavailable', detail, {}, { 'Retry-After': String(retryAfterS) });
