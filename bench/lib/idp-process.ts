/**
 * The local identity provider in a process of its own, for the bench. oidc-provider (and Koa)
 * run every request inside an AsyncLocalStorage; once one has run, Node 20 tracks every promise
 * of the process, which cost each measured decision about 3 µs (a third of a level-1 hit). A
 * deployed authorizer shares its process with no identity provider, so neither does the bench's.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LocalIdentityProviderOptions, RegisterClientInput, RegisteredClient } from '../../infra/local/identity-provider.js';

/** What the bench needs of an identity provider; token requests are counted by the provider itself. */
export interface BenchIdp {
  readonly issuer: string;
  readonly audience: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  registerClient(input: RegisterClientInput): Promise<RegisteredClient>;
  /** POSTs to the token endpoint so far, answered or failed. */
  tokenRequests(): Promise<number>;
  stop(): Promise<void>;
}

type Call = { op: 'registerClient'; input: RegisterClientInput } | { op: 'tokenRequests' } | { op: 'stop' };
/** A request to bench/lib/idp-child.ts; its answer carries the same `id`. */
export type IdpRequest = Call & { id: number };
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
type Ready = { ready: true; issuer: string; audience: string; jwksUri: string; tokenEndpoint: string } | { ready: false; error: string };

const CHILD = fileURLToPath(new URL('./idp-child.ts', import.meta.url));

export function startIdentityProviderProcess(opts: LocalIdentityProviderOptions, track?: (c: ChildProcess) => void): Promise<BenchIdp> {
  const child = fork(CHILD, [JSON.stringify(opts)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track?.(child);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 0;
  let exited = false;
  const call = (req: Call) =>
    new Promise<unknown>((resolve, reject) => {
      if (exited) return reject(new Error('the identity provider process has exited'));
      const id = ++next;
      pending.set(id, { resolve, reject });
      child.send({ ...req, id });
    });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      exited = true;
      for (const p of pending.values()) p.reject(new Error(`the identity provider process exited (${code})`));
      pending.clear();
      reject(new Error(`the identity provider process exited (${code}) before it was ready`));
    });
    child.on('message', (m: Ready | Reply) => {
      if ('ready' in m) {
        if (!m.ready) return reject(new Error(m.error));
        const { issuer, audience, jwksUri, tokenEndpoint } = m;
        return resolve({
          issuer,
          audience,
          jwksUri,
          tokenEndpoint,
          registerClient: (input) => call({ op: 'registerClient', input }) as Promise<RegisteredClient>,
          tokenRequests: () => call({ op: 'tokenRequests' }) as Promise<number>,
          stop: async () => {
            if (exited) return;
            const gone = new Promise((r) => child.once('exit', r));
            await call({ op: 'stop' }).catch(() => undefined);
            await gone;
          },
        });
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.error));
    });
  });
}
