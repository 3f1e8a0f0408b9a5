/**
 * The SigV4 signer of the authorizer's direct DynamoDB calls: AWS's documented example, and the
 * same signatures as `aws4` (a long-used implementation, kept as a development dependency for
 * this comparison) over requests that exercise every part of the canonical request.
 */
import aws4 from 'aws4';
import { describe, expect, it } from 'vitest';
import { signRequest } from '../../functions/adapters/sigv4.js';
import { rng } from '../../bench/lib/stats.js';

const AKID = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';

describe('signRequest', () => {
  it("gives the signature of AWS's SigV4 test suite example (get-vanilla)", () => {
    const headers = signRequest({
      method: 'GET',
      url: new URL('https://example.amazonaws.com/'),
      headers: {},
      body: '',
      service: 'service',
      region: 'us-east-1',
      credentials: { accessKeyId: AKID, secretAccessKey: SECRET },
      now: Date.parse('2015-08-30T12:36:00Z'),
    });
    expect(headers['x-amz-date']).toBe('20150830T123600Z');
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it('signs as aws4 does: DynamoDB calls with and without a session token, ports, paths, queries and odd header spacing', () => {
    const rand = rng(4242);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    for (let i = 0; i < 200; i++) {
      const url = new URL(
        pick([
          'https://dynamodb.eu-west-1.amazonaws.com/',
          'http://127.0.0.1:8000/',
          'https://example.amazonaws.com/a b/c%2Fd/',
          'https://example.amazonaws.com/x?b=2&a=1&a=0&c=%20*',
          // An endpoint override with an empty path segment: signed as AWS normalizes it.
          'https://example.amazonaws.com/proxy//dynamodb/',
          'https://example.amazonaws.com//',
        ]),
      );
      const body = pick(['', '{"TableName":"t","Limit":100}', JSON.stringify({ k: 'é ☃ ' + i })]);
      const method = pick(['POST', 'GET']);
      const headers: Record<string, string> = { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': pick(['DynamoDB_20120810.Query', 'DynamoDB_20120810.GetItem']), 'X-Custom': pick(['a  b', ' lead', 'x']) };
      // aws4 adds and signs Content-Length for a body; give it to both.
      if (body) headers['Content-Length'] = String(Buffer.byteLength(body));
      const credentials = { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: pick([undefined, 'token/with+chars=']) };
      const now = Date.parse('2026-11-30T10:00:00Z') + Math.floor(rand() * 86_400_000 * 30);
      const region = pick(['us-east-1', 'eu-west-1']);
      const service = pick(['dynamodb', 'execute-api']);
      const ours = signRequest({ method, url, headers, body, service, region, credentials, now });
      const theirs = aws4.sign(
        { host: url.host, path: url.pathname + url.search, method, service, region, headers: { ...headers, 'X-Amz-Date': ours['x-amz-date']! }, body },
        credentials,
      );
      expect(ours.authorization, `${method} ${url.href}`).toBe(theirs.headers!.Authorization);
      if (credentials.sessionToken) expect(ours['x-amz-security-token']).toBe(credentials.sessionToken);
    }
  });
});
