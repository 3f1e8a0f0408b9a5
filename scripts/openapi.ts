/**
 * `npm run openapi`: writes `openapi.json` from the zod schemas and the problem catalogue
 * (`functions/http/openapi.ts`), then the client's types from it with openapi-typescript
 * (`packages/client/src/schema.ts`), and the README's problem-type table from the catalogue.
 * The tests fail while any of them is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderOpenApiDocument } from '../functions/http/openapi.js';
import { problemTypesMarkdown } from '../packages/cdk/src/contract/problem-types.js';
import { ROOT } from '../infra/local/local-stack.js';
import { renderClientSchema } from '../packages/client/generate.js';

const document = renderOpenApiDocument();
writeFileSync(join(ROOT, 'openapi.json'), document);
writeFileSync(join(ROOT, 'packages/client/src/schema.ts'), await renderClientSchema(document));
const readmePath = join(ROOT, 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const table = /(<!-- problem-types:start -->\n)[\s\S]*?(\n<!-- problem-types:end -->)/;
if (!table.test(readme)) throw new Error('README.md has no problem-types markers');
writeFileSync(readmePath, readme.replace(table, (_m, start: string, end: string) => `${start}${problemTypesMarkdown()}${end}`));
console.log('wrote openapi.json, packages/client/src/schema.ts and the problem-type table of README.md');
