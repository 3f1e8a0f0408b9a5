/**
 * `npm start` as a developer runs it, stopped by a signal: nothing it started may outlive it
 * (tsx, java, the function workers, the synth), and its ports are free afterwards. Each launch
 * gets its own process group, as a terminal gives a job.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/local/free-port.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Hang detectors for a loaded machine, not timings. */
const READY_WITHIN_MS = 240_000;
const STOPPED_WITHIN_MS = 60_000;
/** Vitest's own limit per case: above the two hang detectors together. */
const CASE_TIMEOUT_MS = READY_WITHIN_MS + STOPPED_WITHIN_MS + 30_000;

interface Launch {
  npm: ChildProcess;
  /** The process group: npm's pid, since it leads a group of its own. */
  pgid: number;
  ports: { api: number; idp: number; dynamo: number };
  output(): string;
}

const launches: Launch[] = [];
afterEach(() => {
  // Whatever a failed case left behind: only this launch's own group.
  for (const l of launches.splice(0)) {
    try {
      process.kill(-l.pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

async function launch(): Promise<Launch> {
  const ports = { api: await freePort(), idp: await freePort(), dynamo: await freePort() };
  const env: NodeJS.ProcessEnv = { ...process.env, LATCHKEY_API_PORT: String(ports.api), LATCHKEY_IDP_PORT: String(ports.idp), LATCHKEY_DYNAMODB_PORT: String(ports.dynamo) };
  delete env.AWS_ENDPOINT_URL_DYNAMODB;
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  npm.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const l = { npm, pgid: npm.pid!, ports, output: () => output };
  launches.push(l);
  return l;
}

/** Pids in the process group, with their commands. */
function group(pgid: number): { pid: number; cmd: string }[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '-g', String(pgid)])
      .toString()
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '')
      .map((line) => ({ pid: Number(line.split(/\s+/, 1)[0]), cmd: line.slice(line.indexOf(' ') + 1) }));
  } catch {
    return []; // ps exits 1 when the group is empty
  }
}

async function until(what: string, ok: () => boolean, withinMs: number, l: Launch): Promise<void> {
  const started = Date.now();
  while (!ok()) {
    if (Date.now() - started > withinMs) throw new Error(`${what}: not after ${withinMs} ms\n--- output ---\n${l.output().slice(-3000)}\n--- group ---\n${JSON.stringify(group(l.pgid))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });

describe('npm start and signals', () => {
  it('SIGTERM to npm alone, once running: every child stops and every port is free', async () => {
    const l = await launch();
    await until('ready', () => l.output().includes('Latchkey is running'), READY_WITHIN_MS, l);
    expect(l.output()).toMatch(/lives in memory/);
    const before = group(l.pgid);
    expect(before.some((p) => p.cmd.includes('DynamoDBLocal.jar'))).toBe(true);
    expect(before.some((p) => p.cmd.includes('lambda-runner.mjs'))).toBe(true);
    expect(before.some((p) => p.cmd.includes('tsx'))).toBe(true);
    process.kill(l.pgid, 'SIGTERM');
    await until('every process of the group gone', () => group(l.pgid).length === 0, STOPPED_WITHIN_MS, l);
    for (const port of Object.values(l.ports)) expect(await refused(port)).toBe(true);
  }, CASE_TIMEOUT_MS);

  it.each([
    ['SIGTERM', 'the process group', (pgid: number) => -pgid],
    ['SIGINT', 'npm alone', (pgid: number) => pgid],
  ] as const)('%s to %s during the start (java up, synth running): nothing remains', async (signal, _to, target) => {
    const l = await launch();
    const synthRunning = () => {
      const g = group(l.pgid);
      return g.some((p) => p.cmd.includes('DynamoDBLocal.jar')) && g.some((p) => /aws-cdk\/bin\/cdk synth/.test(p.cmd));
    };
    await until('DynamoDB Local up and the synth running', synthRunning, READY_WITHIN_MS, l);
    process.kill(target(l.pgid), signal);
    await until('every process of the group gone', () => group(l.pgid).length === 0, STOPPED_WITHIN_MS, l);
    expect(l.output()).not.toContain('Latchkey is running');
    for (const port of Object.values(l.ports)) expect(await refused(port)).toBe(true);
  }, CASE_TIMEOUT_MS);
});
