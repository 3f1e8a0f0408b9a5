/**
 * `npm run openapi`: writes `openapi.json` from the zod schemas and the problem catalogue
 * (`functions/http/openapi.ts`), then the client's types from it with openapi-typescript
 * (`packages/client/src/schema.ts`). The tests fail while either committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderOpenApiDocument } from '../functions/http/openapi.js';
import { ROOT } from '../infra/local/local-stack.js';
import { renderClientSchema } from '../packages/client/generate.js';

const document = renderOpenApiDocument();
writeFileSync(join(ROOT, 'openapi.json'), document);
writeFileSync(join(ROOT, 'packages/client/src/schema.ts'), await renderClientSchema(document));
console.log('wrote openapi.json and packages/client/src/schema.ts');
