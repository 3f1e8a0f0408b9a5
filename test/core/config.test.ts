import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/core/errors.js';
import { DECISION_BUDGET_MS, loadAuthorizerConfig } from '../../functions/core/config.js';

const BASE = { ISSUER: 'https://issuer.test/', AUDIENCE: 'https://api.test' };

describe('DECISION_BUDGET_MS', () => {
  it('defaults to 3000 ms', () => {
    expect(loadAuthorizerConfig(BASE).decisionBudgetMs).toBe(3000);
    expect(DECISION_BUDGET_MS.default).toBe(3000);
  });

  it.each(['250', '1500', '20000'])('accepts %s', (v) => {
    expect(loadAuthorizerConfig({ ...BASE, DECISION_BUDGET_MS: v }).decisionBudgetMs).toBe(Number(v));
  });

  it.each(['0', '249', '20001', '-1', '1.5', '3s', 'NaN'])('refuses %s at cold start, naming the variable', (v) => {
    expect(() => loadAuthorizerConfig({ ...BASE, DECISION_BUDGET_MS: v })).toThrow(ConfigError);
    expect(() => loadAuthorizerConfig({ ...BASE, DECISION_BUDGET_MS: v })).toThrow(/DECISION_BUDGET_MS/);
  });
});

describe('STATE_TIMEOUT_MS', () => {
  const WITH_TABLE = { ...BASE, TOKEN_CACHE_TABLE: 'cache' };

  it('defaults to 1000 ms and keeps a value within the decision budget', () => {
    expect(loadAuthorizerConfig(WITH_TABLE).state?.timeoutMs).toBe(1000);
    expect(loadAuthorizerConfig({ ...WITH_TABLE, STATE_TIMEOUT_MS: '2500' }).state?.timeoutMs).toBe(2500);
  });

  it('never outlives the decision budget: a longer value is taken as the budget', () => {
    // A read stuck past the budget serves no decision and keeps later ones from a recovered table.
    expect(loadAuthorizerConfig({ ...WITH_TABLE, STATE_TIMEOUT_MS: '10000', DECISION_BUDGET_MS: '1000' }).state?.timeoutMs).toBe(1000);
    expect(loadAuthorizerConfig({ ...WITH_TABLE, STATE_TIMEOUT_MS: '5000' }).state?.timeoutMs).toBe(3000);
  });

  it.each(['99', '10001', 'x'])('refuses %s at cold start, naming the variable', (v) => {
    expect(() => loadAuthorizerConfig({ ...WITH_TABLE, STATE_TIMEOUT_MS: v })).toThrow(/STATE_TIMEOUT_MS/);
  });
});
