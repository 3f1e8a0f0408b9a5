import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { DynamoDbLocalError, startDynamoDbLocal } from '../../infra/local/dynamodb-local.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function javaOnPort(port: number): boolean {
  try {
    return execFileSync('pgrep', ['-f', `DynamoDBLocal.jar.*-port ${port}$`]).toString().trim() !== '';
  } catch {
    return false; // pgrep exits 1 when nothing matches
  }
}

describe('DynamoDB Local', () => {
  it('is shared with forked workers through the environment the SDK reads', async () => {
    const endpoint = inject('dynamoDbEndpoint');
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(process.env.AWS_ENDPOINT_URL_DYNAMODB).toBe(endpoint);
    expect(process.env.AWS_REGION).toBe('us-east-1');
    const db = new DynamoDBClient({}); // no endpoint, region or credentials given: all from env
    const out = await db.send(new ListTablesCommand({}));
    db.destroy();
    expect(out.TableNames).toBeInstanceOf(Array);
  });

  it('starts on a free port, answers, and stop leaves no java process', async () => {
    const ddb = await startDynamoDbLocal();
    expect(ddb.endpoint).toBe(`http://127.0.0.1:${ddb.port}`);
    expect(alive(ddb.pid)).toBe(true);
    const db = new DynamoDBClient({ endpoint: ddb.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    await expect(db.send(new ListTablesCommand({}))).resolves.toMatchObject({ TableNames: [] });
    db.destroy();

    await ddb.stop();
    expect(alive(ddb.pid)).toBe(false);
    expect(javaOnPort(ddb.port)).toBe(false);
    await ddb.stop(); // idempotent
  });

  it('fails clearly, with java output, when the fixed port is taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '0.0.0.0', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const err = await startDynamoDbLocal({ port, startTimeoutMs: 10_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DynamoDbLocalError);
      expect((err as Error).message).toContain(`port ${port}`);
      expect((err as Error).message).toMatch(/java output/);
      expect(javaOnPort(port)).toBe(false);
    } finally {
      blocker.close();
    }
  });
});
