/** Lambda entry point of the answers given without credentials: preflight, 405, `/openapi.json`. */
import { loadPublicConfig } from '../core/config.js';
import { createPublicHandler } from '../http/public-handler.js';
import document from '../../openapi.json' with { type: 'json' };

export const handler = createPublicHandler({ document, allowedOrigins: loadPublicConfig(process.env).allowedOrigins });
