/** Runs the local identity provider for bench/lib/idp-process.ts, answering its requests over IPC. */
import { startLocalIdentityProvider, type LocalIdentityProviderOptions } from '../../infra/local/identity-provider.js';
import type { IdpRequest } from './idp-process.js';

const send = (m: unknown) => process.send?.(m);

try {
  const idp = await startLocalIdentityProvider(JSON.parse(process.argv[2] ?? '{}') as LocalIdentityProviderOptions);
  process.on('disconnect', () => void idp.stop().finally(() => process.exit(0)));
  process.on('message', (m: IdpRequest) => {
    const answer = async (): Promise<unknown> => {
      switch (m.op) {
        case 'registerClient':
          return idp.registerClient(m.input);
        case 'tokenRequests':
          return idp.stats.tokenRequests;
        case 'stop':
          await idp.stop();
          setImmediate(() => process.exit(0));
          return null;
        default:
          throw new Error(`unknown operation ${(m as { op: string }).op}`);
      }
    };
    answer().then(
      (value) => send({ id: m.id, ok: true, value }),
      (err: unknown) => send({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  send({ ready: true, issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri, tokenEndpoint: idp.tokenEndpoint });
} catch (err) {
  send({ ready: false, error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}
