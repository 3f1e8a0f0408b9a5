/**
 * `npm run smoke --stack` reads the stack's outputs with CloudFormation `DescribeStacks`: here
 * through the real SDK client, against a local server speaking CloudFormation's query protocol.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStackOutputs, toStackOutputs } from '../../infra/smoke/stack-outputs.js';
import { formatTable } from '../../infra/smoke/smoke.js';

let server: Server;
const requests: URLSearchParams[] = [];
const saved = { ...process.env };

const describeStacksXml = (outputs: Record<string, string>) => `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult><Stacks><member>
    <StackName>Latchkey</StackName><StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2026-11-30T08:00:00Z</CreationTime>
    <Outputs>${Object.entries(outputs)
      .map(([k, v]) => `<member><OutputKey>${k}</OutputKey><OutputValue>${v}</OutputValue></member>`)
      .join('')}</Outputs>
  </member></Stacks></DescribeStacksResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>
</DescribeStacksResponse>`;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const params = new URLSearchParams(body);
      requests.push(params);
      if (params.get('StackName') !== 'Latchkey') {
        res.writeHead(400, { 'Content-Type': 'text/xml' });
        res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${params.get('StackName')} does not exist</Message></Error><RequestId>r2</RequestId></ErrorResponse>`);
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/xml' });
      res.end(
        describeStacksXml({
          ApiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/v1/',
          Issuer: 'https://tenant.eu.auth0.com/',
          Audience: 'https://api.example.com',
          RevocationCheckSeconds: '30',
          AllowedOrigins: 'https://app.example.com,https://admin.example.com',
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.env.AWS_ENDPOINT_URL_CLOUDFORMATION = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.AWS_ACCESS_KEY_ID = 'local';
  process.env.AWS_SECRET_ACCESS_KEY = 'local';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});

afterAll(async () => {
  process.env = saved;
  await new Promise((r) => server.close(r));
});

describe('the stack outputs', () => {
  it('reads ApiUrl, Issuer, Audience, RevocationCheckSeconds and AllowedOrigins through DescribeStacks', async () => {
    expect(await readStackOutputs('Latchkey', 'eu-west-1')).toEqual({
      apiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/v1/',
      issuer: 'https://tenant.eu.auth0.com/',
      audience: 'https://api.example.com',
      revocationCheckS: 30,
      allowedOrigins: ['https://app.example.com', 'https://admin.example.com'],
    });
    expect(requests.at(-1)?.get('Action')).toBe('DescribeStacks');
  });

  it('says which stack it could not read', async () => {
    await expect(readStackOutputs('Nope', 'eu-west-1')).rejects.toThrow(/Nope does not exist/);
    expect(() => toStackOutputs('Other', [{ OutputKey: 'Foo', OutputValue: 'x' }])).toThrow('stack Other has no ApiUrl output: is it a Latchkey stack?');
    expect(toStackOutputs('Old', [{ OutputKey: 'ApiUrl', OutputValue: 'https://x/v1/' }])).toEqual({ apiUrl: 'https://x/v1/', issuer: undefined, audience: undefined, revocationCheckS: undefined, allowedOrigins: [] });
  });
});

describe('the table', () => {
  it('aligns check, result and figure', () => {
    expect(
      formatTable([
        { check: 'malformed key → 401', result: 'pass', figure: '12 ms' },
        { check: 'revoked key: Basic refused', result: 'FAIL', figure: 'still 200 after 35.1 s (bound 30 s)' },
      ]),
    ).toBe(
      [
        'check                       result  figure',
        '--------------------------  ------  ------',
        'malformed key → 401         pass    12 ms',
        'revoked key: Basic refused  FAIL    still 200 after 35.1 s (bound 30 s)',
      ].join('\n'),
    );
  });
});
