/**
 * RFC 9457 problem details: the one shape of every error answer of the management API.
 * `type` is stable per kind of problem so clients can switch on it.
 */
import { PROBLEM_TYPES, problemTypeUri, type ProblemSlug } from '../../packages/cdk/src/contract/problem-types.js';

export { PROBLEM_BASE, type ProblemSlug } from '../../packages/cdk/src/contract/problem-types.js';

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

  /** Status and title come from the catalogue (`problem-types.ts`); a slug without a fixed status answers 500. */
  constructor(slug: ProblemSlug, detail?: string, extensions: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    const t = PROBLEM_TYPES[slug];
    super(detail ?? t.title);
    this.status = typeof t.status === 'number' ? t.status : 500;
    this.slug = slug;
    this.title = t.title;
    this.extensions = extensions;
    this.headers = headers;
  }

  body(instance?: string): ProblemBody {
    return {
      type: problemTypeUri(this.slug),
      title: this.title,
      status: this.status,
      ...(this.message !== this.title ? { detail: this.message } : {}),
      ...(instance ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export const badRequest = (detail: string, errors?: { path: string; message: string }[]) => new HttpProblem('validation-error', detail, errors ? { errors } : {});
export const forbidden = (detail: string) => new HttpProblem('forbidden', detail);
export const insufficientScope = (required: string) =>
  new HttpProblem('insufficient-scope', `this operation needs the ${required} permission`, { requiredScope: required });
export const notFound = (what: string) => new HttpProblem('not-found', `${what} was not found`);
export const conflict = (detail: string) => new HttpProblem('conflict', detail);
export const unavailable = (retryAfterS: number, detail = 'a dependency is unavailable; retry later') =>
  new HttpProblem('unavailable', detail, {}, { 'Retry-After': String(retryAfterS) });
const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
/** Methods in one stable order (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS), for `Allow` and the preflight. */
export const canonicalMethods = (methods: readonly string[]): string[] =>
  [...new Set(methods)].sort((a, b) => (METHOD_ORDER.indexOf(a) + 1 || 99) - (METHOD_ORDER.indexOf(b) + 1 || 99));

/** 405 with the `Allow` header RFC 9110 §15.5.6 requires. */
export const methodNotAllowed = (allow: readonly string[]) => {
  const list = canonicalMethods(allow).join(', ');
  return new HttpProblem('method-not-allowed', `this route answers ${list}`, {}, { Allow: list });
};
export const payloadTooLarge = (limitBytes: number) => new HttpProblem('payload-too-large', `the body is over ${limitBytes} bytes`, { limitBytes });
