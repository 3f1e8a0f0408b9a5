// One local Lambda "container": imports the bundled handler once (cold start) and serves
// invocations sent over IPC one at a time, as a Lambda execution environment does.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { existsSync } from 'node:fs';

// The parent (the local stack) holds the IPC channel: when it goes, however it went, so do we.
process.on('disconnect', () => process.exit(0));

const dir = process.env.LATCHKEY_LOCAL_CODE_DIR;
const [file, exportName] = (process.env._HANDLER ?? 'index.handler').split('.');
const candidates = ['.mjs', '.js', '.cjs'].map((ext) => join(dir, `${file}${ext}`));
const path = candidates.find((p) => existsSync(p));
if (!path) {
  process.send?.({ type: 'fatal', message: `no handler file ${file}.{mjs,js,cjs} in ${dir}` });
  process.exit(1);
}
const mod = await import(pathToFileURL(path).href);
const handler = mod[exportName] ?? mod.default?.[exportName];
if (typeof handler !== 'function') {
  process.send?.({ type: 'fatal', message: `${path} exports no function ${exportName}` });
  process.exit(1);
}
process.send?.({ type: 'ready' });

process.on('message', async (msg) => {
  if (msg?.type !== 'invoke') return;
  const deadline = Date.now() + msg.timeoutMs;
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: '$LATEST',
    invokedFunctionArn: msg.functionArn,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: msg.requestId,
    logGroupName: `/aws/lambda/${process.env.AWS_LAMBDA_FUNCTION_NAME}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  try {
    const result = await handler(msg.event, context);
    process.send({ type: 'result', id: msg.id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    process.send({ type: 'result', id: msg.id, ok: false, error: { errorType: err?.name ?? 'Error', errorMessage: String(err?.message ?? err) } });
  }
});
