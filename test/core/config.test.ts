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
