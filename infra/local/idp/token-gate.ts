/**
 * Sits in front of the token endpoint: counts every POST (including the ones it fails) and,
 * when a test asks for it, fails them the way Auth0 does when it is down or rate limiting.
 */
import type { ServerResponse } from 'node:http';
import { sendJson } from './http.js';

export type FailureMode = 'none' | 'unavailable' | 'rate-limited' | 'slow';

export interface FailureOptions {
  /** 'slow': how long the request hangs before it is answered normally (default 10 s). */
  delayMs?: number;
  /** 'rate-limited': Retry-After seconds, also used for x-ratelimit-reset (default 1). */
  retryAfterS?: number;
  /** 'rate-limited': the x-ratelimit-limit value (default 30, Auth0's free plan). */
  limit?: number;
}

export interface TokenStats {
  /** POSTs to the token endpoint, answered or failed. */
  readonly tokenRequests: number;
}

export class TokenGate {
  #mode: FailureMode = 'none';
  #opts: FailureOptions = {};
  #tokenRequests = 0;
  readonly #waits = new Set<{ timer: NodeJS.Timeout; resolve: (go: boolean) => void }>();

  readonly stats: TokenStats = Object.defineProperty({} as TokenStats, 'tokenRequests', {
    enumerable: true,
    get: () => this.#tokenRequests,
  });

  get mode(): FailureMode {
    return this.#mode;
  }

  setFailure(mode: FailureMode, opts: FailureOptions = {}): void {
    this.#mode = mode;
    this.#opts = opts;
  }

  resetStats(): void {
    this.#tokenRequests = 0;
  }

  /**
   * Counts the request and applies the failure mode. Resolves true when the request should go
   * on to the real token endpoint, false when it has been answered (or dropped) here.
   */
  async admit(res: ServerResponse): Promise<boolean> {
    this.#tokenRequests++;
    switch (this.#mode) {
      case 'none':
        return true;
      case 'unavailable':
        sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'The service is unavailable (local failure mode).' });
        return false;
      case 'rate-limited': {
        const retryAfter = this.#opts.retryAfterS ?? 1;
        sendJson(
          res,
          429,
          { error: 'too_many_requests', error_description: 'Global limit has been reached' },
          {
            'retry-after': String(retryAfter),
            'x-ratelimit-limit': String(this.#opts.limit ?? 30),
            'x-ratelimit-remaining': '0',
            'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + retryAfter),
          },
        );
        return false;
      }
      case 'slow':
        return this.#wait(this.#opts.delayMs ?? 10_000);
    }
  }

  #wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.#waits.delete(entry);
          resolve(true);
        }, ms),
        resolve,
      };
      this.#waits.add(entry);
    });
  }

  /** Drops the hanging requests (their sockets are closed by the server) so no timer outlives stop(). */
  cancelWaits(): void {
    for (const w of this.#waits) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.#waits.clear();
  }
}
