/**
 * Local Lambda execution environments for one function: child processes running the bundled
 * code from the cloud assembly with the function's environment, each serving one invocation
 * at a time. New environments start when all are busy (up to `maxConcurrency`); an invocation
 * that overruns the function's timeout ends its environment, as on Lambda.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { FunctionModel } from './cloud-assembly.js';

const RUNNER = fileURLToPath(new URL('./lambda-runner.mjs', import.meta.url));

export type InvokeOutcome = { ok: true; result: unknown } | { ok: false; errorType: string; errorMessage: string };

interface Environment {
  child: ChildProcess;
  ready: Promise<void>;
  busy: boolean;
  pending: Map<string, (o: InvokeOutcome) => void>;
}

export interface LambdaPoolOptions {
  fn: FunctionModel;
  name: string;
  /** Fully resolved environment variables. */
  env: Record<string, string>;
  maxConcurrency?: number;
  /** Where the function's logs go (its stdout/stderr lines). */
  onLog?: (line: string) => void;
}

export class LambdaPool {
  readonly #o: LambdaPoolOptions;
  readonly #envs: Environment[] = [];
  readonly #waiting: (() => void)[] = [];
  #closed = false;

  constructor(o: LambdaPoolOptions) {
    this.#o = o;
  }

  /** Process ids of the running environments. */
  get pids(): number[] {
    return this.#envs.map((e) => e.child.pid).filter((p): p is number => p !== undefined);
  }

  get arn(): string {
    return `arn:aws:lambda:us-east-1:000000000000:function:${this.#o.name}`;
  }

  async invoke(event: unknown): Promise<InvokeOutcome> {
    const env = await this.#acquire();
    const id = randomUUID();
    const timeoutMs = this.#o.fn.timeoutS * 1000;
    try {
      return await new Promise<InvokeOutcome>((resolve) => {
        const timer = setTimeout(() => {
          env.pending.delete(id);
          this.#discard(env);
          resolve({ ok: false, errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${this.#o.fn.timeoutS.toFixed(2)} seconds` });
        }, timeoutMs);
        env.pending.set(id, (o) => {
          clearTimeout(timer);
          resolve(o);
        });
        env.child.send({ type: 'invoke', id, event, requestId: id, timeoutMs, functionArn: this.arn });
      });
    } finally {
      this.#release(env);
    }
  }

  async #acquire(): Promise<Environment> {
    for (;;) {
      if (this.#closed) throw new Error('the local Lambda pool is closed');
      const idle = this.#envs.find((e) => !e.busy);
      if (idle) {
        idle.busy = true;
        await idle.ready;
        return idle;
      }
      if (this.#envs.length < (this.#o.maxConcurrency ?? 2)) {
        const env = this.#spawn();
        env.busy = true;
        await env.ready;
        return env;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #release(env: Environment): void {
    env.busy = false;
    this.#waiting.shift()?.();
  }

  #spawn(): Environment {
    const child = fork(RUNNER, [], {
      env: {
        ...this.#o.env,
        LATCHKEY_LOCAL_CODE_DIR: this.#o.fn.codeDir,
        _HANDLER: this.#o.fn.handler,
        AWS_LAMBDA_FUNCTION_NAME: this.#o.name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(this.#o.fn.memoryMb),
        AWS_EXECUTION_ENV: `AWS_Lambda_${this.#o.fn.runtime}`,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
    });
    const env: Environment = { child, busy: false, pending: new Map(), ready: Promise.resolve() };
    env.ready = new Promise<void>((resolve, reject) => {
      child.on('message', (m: { type: string; id?: string; ok?: boolean; result?: unknown; error?: { errorType: string; errorMessage: string }; message?: string }) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'fatal') reject(new Error(m.message));
        else if (m.type === 'result' && m.id) {
          const done = env.pending.get(m.id);
          env.pending.delete(m.id);
          done?.(m.ok ? { ok: true, result: m.result } : { ok: false, ...m.error! });
        }
      });
      child.once('exit', (code) => {
        reject(new Error(`${this.#o.name} exited during init (code ${code})`));
        for (const done of env.pending.values()) done({ ok: false, errorType: 'Runtime.ExitError', errorMessage: `process exited (code ${code})` });
        env.pending.clear();
        this.#remove(env);
      });
    });
    env.ready.catch(() => this.#remove(env));
    const log = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.#o.onLog?.(line);
    };
    child.stdout?.on('data', log);
    child.stderr?.on('data', log);
    this.#envs.push(env);
    return env;
  }

  #remove(env: Environment): void {
    const i = this.#envs.indexOf(env);
    if (i >= 0) this.#envs.splice(i, 1);
  }

  #discard(env: Environment): void {
    this.#remove(env);
    env.child.kill('SIGKILL');
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w();
    await Promise.all(
      this.#envs.splice(0).map(
        (e) =>
          new Promise<void>((resolve) => {
            if (e.child.exitCode !== null) return resolve();
            e.child.once('exit', () => resolve());
            e.child.kill('SIGTERM');
            setTimeout(() => e.child.kill('SIGKILL'), 2000).unref();
          }),
      ),
    );
  }
}
