/**
 * `npm start`: the whole API on this machine, from the synthesized stack. Ports:
 * LATCHKEY_API_PORT (3000), LATCHKEY_IDP_PORT (4000), LATCHKEY_SPA_PORT (5173), LATCHKEY_DYNAMODB_PORT (a free one).
 * LATCHKEY_VERBOSE=1 shows every function log line; LATCHKEY_READY_TIMEOUT_S (120) bounds the
 * wait for DynamoDB Local.
 *
 * SIGINT or SIGTERM, at any moment (during the start too), stops every child: java, the
 * function workers, the synth. A second signal exits at once; the exit hooks still kill java.
 * `npm start` runs this with `exec`, so a signal sent to npm reaches us.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readyTimeoutMs } from '../infra/local/dynamodb-local.js';
import { ROOT, startLocalStack, type LocalStack } from '../infra/local/local-stack.js';
import { seedDemo, toEnvFile } from '../infra/local/seed.js';

const port = (name: string, dflt: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new Error(`${name} must be a port number, got "${v}"`);
  return Number(v);
};
// The SDK's notice about Node 22 is for the deployed runtime's future, not for this demo.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const verbose = process.env.LATCHKEY_VERBOSE === '1';
const started = Date.now();

function show(source: string, line: string): void {
  if (source === 'synth') return;
  if (source === 'api') {
    const e = JSON.parse(line) as Record<string, unknown>;
    const who = e.authMethod ? ` ${String(e.authMethod)} tenant=${String(e.tenantId || '-')}` : '';
    console.log(`  ${String(e.httpMethod)} ${String(e.path)} → ${String(e.status)}${who}`);
    return;
  }
  if (verbose || /"level":"(WARN|ERROR|CRITICAL)"|Error|error/.test(line)) console.log(`  [${source}] ${line}`);
}

let stack: LocalStack | undefined;
let starting: Promise<LocalStack> | undefined;
const abort = new AbortController();
let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log('\nStopping the local stack…');
  // A start in progress stops what it started itself once aborted; wait for that, then the rest.
  abort.abort();
  await starting?.catch(() => undefined);
  await stack?.stop();
  process.exit(code);
}
function onSignal(signal: NodeJS.Signals): void {
  if (!stopping) return void shutdown(0);
  console.log(`\n${signal} again: exiting now.`);
  process.exit(130);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

try {
  console.log('Starting Latchkey locally: DynamoDB Local, identity provider, cdk synth, API Gateway…');
  starting = startLocalStack({
    apiPort: port('LATCHKEY_API_PORT', 3000),
    idpPort: port('LATCHKEY_IDP_PORT', 4000),
    dynamoPort: port('LATCHKEY_DYNAMODB_PORT', 0),
    spaPort: port('LATCHKEY_SPA_PORT', 5173),
    readyTimeoutMs: readyTimeoutMs(),
    signal: abort.signal,
    log: show,
  });
  stack = await starting;
  const demo = await seedDemo(stack);
  const dir = join(ROOT, '.local');
  mkdirSync(dir, { recursive: true });
  const envFile = join(dir, 'demo.env');
  writeFileSync(envFile, toEnvFile(demo), { mode: 0o600 });
  chmodSync(envFile, 0o600);
  const rel = relative(process.cwd(), envFile) || envFile;
  console.log(`
Latchkey is running (ready in ${((Date.now() - started) / 1000).toFixed(1)} s).

  API                ${stack.apiUrl}   (OpenAPI document: ${stack.apiUrl}/openapi.json)
  Browser SPA        ${stack.spa.origin}/   (another origin: signs in with PKCE, calls the API with CORS)
  Identity provider  ${stack.idp.origin}/   (browser login, authorization code + PKCE)
  DynamoDB Local     ${stack.dynamo.endpoint}

Demo tenant "${demo.tenantId}" with an admin user and one API key. Their credentials were
generated just now and written to ${rel} (not committed). In another terminal:

  . ${rel}

  # A tenant user, with a user token (Bearer JWT):
  curl -s -H "Authorization: Bearer $LATCHKEY_USER_TOKEN" "$LATCHKEY_API/me"

  # The tenant's back-end, with its API key (X-Api-Key, or Basic with client id and secret):
  curl -s -H "X-Api-Key: $LATCHKEY_API_KEY" "$LATCHKEY_API/me"
  curl -s -u "$LATCHKEY_CLIENT_ID:$LATCHKEY_CLIENT_SECRET" "$LATCHKEY_API/users"
  curl -s -X POST -H "X-Api-Key: $LATCHKEY_API_KEY" -H 'Content-Type: application/json' \\
       -d '{"email":"jane@demo.local","name":"Jane"}' "$LATCHKEY_API/users"

  # The tenant admin lists, issues and revokes keys:
  curl -s -H "Authorization: Bearer $LATCHKEY_USER_TOKEN" "$LATCHKEY_API/tenants/demo/api-keys"
  curl -s -X DELETE -H "Authorization: Bearer $LATCHKEY_USER_TOKEN" "$LATCHKEY_API/tenants/demo/api-keys/$LATCHKEY_KEY_ID"

  # Log in as $LATCHKEY_ADMIN_EMAIL (password in the file) at ${stack.idp.origin}/ for a token
  # through the real PKCE flow, or mint one for scripts:
  curl -s -X POST -H "Authorization: Bearer $LATCHKEY_IDP_ADMIN_TOKEN" -H 'Content-Type: application/json' \\
       -d "{\\"user_id\\":\\"$LATCHKEY_ADMIN_USER_ID\\"}" "$LATCHKEY_IDP/local-admin/token"

All data (tenants, keys, users, cached tokens) lives in memory: it is gone once you stop.
Requests are listed below. Press Ctrl-C to stop everything.
`);
} catch (err) {
  if (!stopping) {
    console.error(`Could not start: ${err instanceof Error ? err.message : String(err)}`);
    await shutdown(1);
  }
}
