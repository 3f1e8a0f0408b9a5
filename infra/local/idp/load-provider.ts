/**
 * Imports oidc-provider once. On Node 20 its module body prints "Unsupported runtime" (it wants
 * Node 22 LTS); it runs fine for this local stand-in, and the project is pinned to Node 20, so
 * that one line is filtered out while the module loads. Every other warning still shows.
 */
import type * as oidc from 'oidc-provider';

export type OidcModule = typeof oidc;

let loading: Promise<OidcModule> | undefined;

export function loadOidcProvider(): Promise<OidcModule> {
  loading ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
      warn(...args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
    }
  })();
  return loading;
}
