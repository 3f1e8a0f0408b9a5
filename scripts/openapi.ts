/**
 * `npm run openapi`: writes `openapi.json` from the zod schemas and the problem catalogue
 * (`functions/http/openapi.ts`) and the client's types from it (`packages/client/src/schema.ts`).
 * The tests fail while either committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderOpenApiDocument } from '../functions/http/openapi.js';
import { ROOT } from '../infra/local/local-stack.js';

writeFileSync(join(ROOT, 'openapi.json'), renderOpenApiDocument());
console.log('wrote openapi.json');
