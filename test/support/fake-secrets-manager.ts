/**
 * A real local HTTP server that speaks the Secrets Manager JSON protocol (awsJson1_1) for
 * `GetSecretValue`, since no Secrets Manager emulator runs here. Point the AWS SDK at it with
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER` (plus dummy credentials and a region); `calls` counts
 * requests so tests can prove caching. Request signatures are not checked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

export interface FakeSecretsManager {
  readonly endpoint: string;
  /** Secret name → SecretString. Tests may change it at any time. */
  readonly secrets: Map<string, string>;
  /** Number of `GetSecretValue` calls received. */
  readonly calls: number;
  /** Secret ids asked for, oldest first. */
  readonly requestedIds: string[];
  close(): Promise<void>;
}

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

export async function startFakeSecretsManager(initial: Record<string, string> = {}): Promise<FakeSecretsManager> {
  const secrets = new Map(Object.entries(initial));
  const requestedIds: string[] = [];
  const versions = new Map<string, string>();
  let calls = 0;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() }).end(JSON.stringify(body));
      };
      const target = req.headers['x-amz-target'];
      if (req.method !== 'POST' || req.url !== '/' || target !== 'secretsmanager.GetSecretValue') {
        reply(400, { __type: 'UnknownOperationException', message: 'Unknown operation' });
        return;
      }
      calls++;
      let input: { SecretId?: unknown };
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId?: unknown };
      } catch {
        reply(400, { __type: 'SerializationException', message: 'Invalid JSON' });
        return;
      }
      const secretId = typeof input.SecretId === 'string' ? input.SecretId : '';
      requestedIds.push(secretId);
      // Accept the name or an ARN ending in the name (the SDK passes whatever it is given).
      const name = secretId.startsWith('arn:') ? secretId.split(':secret:')[1]?.replace(/-[A-Za-z0-9]{6}$/, '') ?? '' : secretId;
      const value = secrets.get(name);
      if (value === undefined) {
        reply(400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
        return;
      }
      let versionId = versions.get(name);
      if (!versionId) {
        versionId = randomUUID();
        versions.set(name, versionId);
      }
      reply(200, {
        ARN: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`,
        Name: name,
        SecretString: value,
        VersionId: versionId,
        VersionStages: ['AWSCURRENT'],
        CreatedDate: Math.floor(Date.now() / 1000),
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    secrets,
    requestedIds,
    get calls() {
      return calls;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
