/**
 * Vitest global setup of every project: the stacks the tests build deploy @latchkey/cdk's
 * pre-built authorizer, so it is built from the current source first, as `infra/app.ts` does
 * before a synth (idempotent: an unchanged build is left alone).
 */
import { buildAuthorizerAsset } from '../../infra/bundling.js';

export default function setup(): void {
  buildAuthorizerAsset();
}
