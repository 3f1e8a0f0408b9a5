/**
 * AWS Signature Version 4 for the authorizer's few direct DynamoDB calls (the principal-state
 * feed): `node:crypto` HMAC and SHA-256, nothing else. The AWS SDK's signer brings `@smithy/core`
 * and `aws4` loads Node's CommonJS machinery (`url`, `querystring`) on the JWT path's cold start;
 * this is the algorithm as AWS documents it (canonical request, string to sign, derived key),
 * checked in the tests against AWS's own example and against `aws4`.
 */
import { createHash, createHmac } from 'node:crypto';

export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

export interface SigV4Request {
  method: string;
  url: URL;
  /** Headers to sign and send; names in any case. `host` and the `x-amz-*` headers are added. */
  headers: Record<string, string>;
  body: string;
  service: string;
  region: string;
  credentials: SigV4Credentials;
  /** Signing time (epoch ms). */
  now: number;
}

const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: string | Buffer, s: string) => createHmac('sha256', key).update(s, 'utf8').digest();

/** RFC 3986 unreserved characters stay; everything else is %XX (upper case), as SigV4 requires. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(params: URLSearchParams): string {
  return [...params]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** The headers to send: the caller's, `host`, `x-amz-date`, the session token if any, and `authorization`. */
export function signRequest(req: SigV4Request): Record<string, string> {
  const amzDate = new Date(req.now).toISOString().replace(/[:-]|\.\d{3}/g, '');
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
  headers.host = req.url.host;
  headers['x-amz-date'] = amzDate;
  if (req.credentials.sessionToken) headers['x-amz-security-token'] = req.credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonicalHeaders = names.map((n) => `${n}:${headers[n]!.trim().replace(/\s+/g, ' ')}\n`).join('');
  // The path normalized as every service but S3 (not a caller here) expects: empty segments
  // dropped (`URL` has already resolved `.` and `..`), the leading and a trailing `/` kept, each
  // segment URI-encoded twice.
  const segments = req.url.pathname.split('/').filter((seg) => seg.length > 0);
  const trailing = segments.length > 0 && req.url.pathname.endsWith('/') ? '/' : '';
  const path = `/${segments.map((seg) => uriEncode(uriEncode(decodeURIComponent(seg)))).join('/')}${trailing}`;
  const canonical = [req.method.toUpperCase(), path, canonicalQuery(req.url.searchParams), canonicalHeaders, signedHeaders, sha256Hex(req.body)].join('\n');
  const scope = `${date}/${req.region}/${req.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${req.credentials.secretAccessKey}`, date), req.region), req.service), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
