/**
 * The subset of `fetch` the core's HTTP calls use. The global `fetch` satisfies it; the
 * authorizer passes `nodeHttpClient` instead, because the first use of the global `fetch`
 * (or `Response`) loads undici, which measured 54-59 ms of a Lambda cold start.
 */
export interface HttpResponse {
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  redirect?: 'error';
}

export type HttpClient = (url: string, init?: HttpRequestInit) => Promise<HttpResponse>;
