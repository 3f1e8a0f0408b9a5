/**
 * `npm run smoke`: proves a running Latchkey does what the README promises (infra/smoke/smoke.ts).
 *
 *   npm run smoke -- --stack Latchkey --region eu-west-1 [--origin https://app.example.com] [--bound 30]
 *   npm run smoke -- --api-url https://…/v1 --issuer https://tenant.eu.auth0.com/ --audience https://api.example.com
 *
 * The operator's credential comes from the environment, never from a flag (shell history, `ps`):
 * LATCHKEY_SMOKE_TOKEN (a platform operator's access token), or LATCHKEY_SMOKE_CLIENT_ID and
 * LATCHKEY_SMOKE_CLIENT_SECRET of a machine client whose tokens carry the platform:admin role.
 * Prints one line per check, then the table; exits 1 when a check failed, 2 on bad usage.
 * SIGINT/SIGTERM stop the checks and clean up what the run created; a second signal exits at once.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_BOUND_S, DEFAULT_SLACK_S, formatTable, runSmoke, type OperatorCredential } from '../infra/smoke/smoke.js';
import { readStackOutputs } from '../infra/smoke/stack-outputs.js';

function usage(message: string): never {
  console.error(`npm run smoke: ${message}
  --stack NAME --region REGION   read ApiUrl, Issuer, Audience, RevocationCheckSeconds, AllowedOrigins from the stack's outputs
  --api-url URL --issuer URL     or give them (flags win over outputs)
  --audience ID                  API identifier for the token endpoint (default: the stack's Audience output)
  --origin ORIGIN                an allowed origin for the CORS checks (default: the first AllowedOrigins output)
  --bound S                      revocation bound in seconds (default: RevocationCheckSeconds output, else ${DEFAULT_BOUND_S})
  --slack S                      latency allowed on top of the bound (default ${DEFAULT_SLACK_S})
  env LATCHKEY_SMOKE_TOKEN, or LATCHKEY_SMOKE_CLIENT_ID + LATCHKEY_SMOKE_CLIENT_SECRET`);
  process.exit(2);
}

const seconds = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) usage(`--${name} must be a number of seconds, got "${v}"`);
  return Number(v);
};

let args;
try {
  args = parseArgs({
    options: {
      stack: { type: 'string' },
      region: { type: 'string' },
      'api-url': { type: 'string' },
      issuer: { type: 'string' },
      audience: { type: 'string' },
      origin: { type: 'string' },
      bound: { type: 'string' },
      slack: { type: 'string' },
    },
    strict: true,
  }).values;
} catch (err) {
  usage((err as Error).message);
}

const env = process.env;
let operator: OperatorCredential;
if (env.LATCHKEY_SMOKE_TOKEN) operator = { token: env.LATCHKEY_SMOKE_TOKEN };
else if (env.LATCHKEY_SMOKE_CLIENT_ID && env.LATCHKEY_SMOKE_CLIENT_SECRET) operator = { clientId: env.LATCHKEY_SMOKE_CLIENT_ID, clientSecret: env.LATCHKEY_SMOKE_CLIENT_SECRET };
else usage('no operator credential: set LATCHKEY_SMOKE_TOKEN, or LATCHKEY_SMOKE_CLIENT_ID and LATCHKEY_SMOKE_CLIENT_SECRET');

if (!args.stack && !args['api-url']) usage('give --stack (and --region) or --api-url and --issuer');
const outputs = args.stack
  ? await readStackOutputs(args.stack, args.region ?? env.AWS_REGION).catch((err: unknown) => {
      console.error(`npm run smoke: could not read the outputs of stack ${args.stack}: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    })
  : undefined;
const apiUrl = args['api-url'] ?? outputs?.apiUrl;
const issuer = args.issuer ?? outputs?.issuer;
if (!apiUrl || !issuer) usage('the API URL and the issuer are needed (--api-url, --issuer, or a stack with ApiUrl and Issuer outputs)');
const audience = args.audience ?? outputs?.audience;
const origin = args.origin ?? outputs?.allowedOrigins[0];
const boundS = seconds('bound', args.bound) ?? outputs?.revocationCheckS ?? DEFAULT_BOUND_S;
const slackS = seconds('slack', args.slack) ?? DEFAULT_SLACK_S;

const abort = new AbortController();
let signalled = false;
const onSignal = (signal: NodeJS.Signals) => {
  if (signalled) {
    console.error(`\n${signal} again: exiting without finishing the clean-up.`);
    process.exit(130);
  }
  signalled = true;
  console.error(`\n${signal}: stopping the checks and cleaning up…`);
  abort.abort(new Error(`interrupted by ${signal}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

console.log(`Latchkey smoke test against ${apiUrl} (issuer ${issuer}; bound ${boundS} s + ${slackS} s slack${origin ? `; origin ${origin}` : ''})`);
const report = await runSmoke({
  apiUrl,
  issuer,
  ...(audience ? { audience } : {}),
  ...(origin ? { origin } : {}),
  operator,
  boundS,
  slackS,
  signal: abort.signal,
  onResult: (r) => console.log(`  ${r.result === 'pass' ? '✓' : r.result === 'skip' ? '-' : '✗'} ${r.check}${r.figure ? ` (${r.figure})` : ''}`),
});
console.log(`\n${formatTable(report.results)}\n`);
const failed = report.results.filter((r) => r.result === 'FAIL');
console.log(failed.length === 0 ? 'smoke: all checks passed' : `smoke: ${failed.length} check(s) failed: ${failed.map((r) => r.check).join('; ')}`);
process.exit(signalled ? 130 : report.ok ? 0 : 1);
