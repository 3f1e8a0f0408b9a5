/**
 * Validates real answers against the committed OpenAPI document (JSON Schema 2020-12 by ajv):
 * the answer's status picks the operation's response (exact, then `4XX`/`5XX`), whose content
 * schema must accept the body.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { ROOT } from '../../infra/local/local-stack.js';

type Json = Record<string, unknown>;

export const OPENAPI_DOCUMENT = JSON.parse(readFileSync(join(ROOT, 'openapi.json'), 'utf8')) as Json & {
  paths: Record<string, Record<string, Json & { responses: Record<string, Json> }>>;
  components: { schemas: Record<string, Json>; responses: Record<string, Json> };
};

// Formats are checked by the schemas' own patterns where it matters (email); the document's
// `format`s are annotations here.
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema(OPENAPI_DOCUMENT, 'openapi');

const compiled = new Map<string, ValidateFunction>();

const deref = (o: Json): Json => {
  const ref = o.$ref;
  if (typeof ref !== 'string') return o;
  return ref.split('/').slice(1).reduce<Json>((acc, k) => acc[k] as Json, OPENAPI_DOCUMENT);
};

/** Errors of `data` against a component schema (`#/components/schemas/Name`), or `[]`. */
export function schemaErrors(ref: string, data: unknown): string[] {
  const validate = ajv.getSchema(`openapi${ref}`);
  if (!validate) throw new Error(`no schema ${ref}`);
  return validate(data) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** Why the answer does not match the document (`[]` when it does). `path` is the template, e.g. `/users/{userId}`. */
export function responseErrors(method: string, path: string, status: number, contentType: string | null, body: unknown): string[] {
  const op = OPENAPI_DOCUMENT.paths[path]?.[method.toLowerCase()];
  if (!op) return [`no operation ${method} ${path} in the document`];
  const response = op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`];
  if (!response) return [`${method} ${path} documents no ${status} answer`];
  const content = deref(response).content as Record<string, { schema: Json }> | undefined;
  if (!content) return body === undefined || body === '' ? [] : [`${status} is documented without a body`];
  const media = (contentType ?? '').split(';')[0]!.trim();
  const entry = content[media];
  if (!entry) return [`${status} answered ${media}, documented ${Object.keys(content).join(', ')}`];
  const key = `${method} ${path} ${status} ${media}`;
  let validate = compiled.get(key);
  if (!validate) {
    // Refs in the document point into it: rebase them on the document added above.
    validate = ajv.compile(JSON.parse(JSON.stringify(entry.schema).replaceAll('"#/components/', '"openapi#/components/')) as Json);
    compiled.set(key, validate);
  }
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}
