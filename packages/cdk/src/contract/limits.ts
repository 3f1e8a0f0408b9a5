/**
 * Bounds shared by the authorizer's configuration (`functions/core/config.ts`) and the construct
 * that configures it, kept here so the package builds without Latchkey's sources.
 */

/** Bounds of `DECISION_BUDGET_MS`; the construct derives the authorizer's function timeout from it. */
export const DECISION_BUDGET_MS = { default: 3000, min: 250, max: 20_000 } as const;
