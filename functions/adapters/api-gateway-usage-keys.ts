/**
 * Usage keys through the API Gateway control plane (`@aws-sdk/client-api-gateway`). `npm start`
 * points the SDK at the local gateway (AWS_ENDPOINT_URL_API_GATEWAY), which speaks these calls.
 */
import {
  APIGatewayClient,
  BadRequestException,
  ConflictException,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
  DeleteUsagePlanKeyCommand,
  GetApiKeysCommand,
  GetUsagePlanKeyCommand,
  GetUsageCommand,
  GetUsagePlansCommand,
  NotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-api-gateway';
import { GatewayThrottledError, KeyInOtherPlanError, UsageKeyExistsError, type GatewayApiKey, type UsageKeyGateway } from '../core/usage-plans.js';

/** Throttling becomes `GatewayThrottledError` (the provisioner retries it); everything else passes through. */
async function mapErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (err instanceof TooManyRequestsException || status === 429) {
      const retryAfter = Number((err as { retryAfterSeconds?: string }).retryAfterSeconds);
      throw new GatewayThrottledError('API Gateway throttled a key change', Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined, { cause: err });
    }
    throw err;
  }
}

export class ApiGatewayUsageKeys implements UsageKeyGateway {
  // The SDK's own retries are off: the provisioner spaces and retries calls on its clock, and
  // gives up on a call at its budget; these timeouts close the socket of a call that hangs.
  constructor(private readonly client = new APIGatewayClient({ maxAttempts: 1, requestHandler: { connectionTimeout: 1000, requestTimeout: 3000, throwOnRequestTimeout: true } })) {}

  findPlan(name: string): Promise<string | undefined> {
    return mapErrors(async () => {
      let position: string | undefined;
      do {
        const out = await this.client.send(new GetUsagePlansCommand({ limit: 500, position }));
        const plan = out.items?.find((p) => p.name === name);
        if (plan?.id) return plan.id;
        position = out.position;
      } while (position);
      return undefined;
    });
  }

  findKey(name: string, value: string): Promise<GatewayApiKey | undefined> {
    return mapErrors(async () => {
      // nameQuery is a prefix match ("t-1" also matches "t-10", "t-123", …), a page at a time:
      // every page is read and the exact name kept, with this deployment's value (names are not
      // unique: another stack's key may have the same one).
      let position: string | undefined;
      do {
        const out = await this.client.send(new GetApiKeysCommand({ nameQuery: name, includeValues: true, limit: 500, position }));
        const key = out.items?.find((k) => k.name === name && k.value === value);
        if (key?.id) return { id: key.id, name };
        position = out.position;
      } while (position);
      return undefined;
    });
  }

  createKey(name: string, value: string): Promise<GatewayApiKey> {
    return mapErrors(async () => {
      try {
        const out = await this.client.send(new CreateApiKeyCommand({ name, value, enabled: true, description: 'Latchkey tenant usage key (per-tenant limits)' }));
        return { id: out.id!, name };
      } catch (err) {
        if (err instanceof ConflictException) throw new UsageKeyExistsError({ cause: err });
        throw err;
      }
    });
  }

  attachKey(planId: string, keyId: string): Promise<void> {
    return mapErrors(async () => {
      try {
        await this.client.send(new CreateUsagePlanKeyCommand({ usagePlanId: planId, keyId, keyType: 'API_KEY' }));
      } catch (err) {
        if (!(err instanceof ConflictException || err instanceof BadRequestException)) throw err;
        // Already in this plan, or refused because it is in another plan of the stage: only
        // the plan's own list tells which.
        try {
          await this.client.send(new GetUsagePlanKeyCommand({ usagePlanId: planId, keyId }));
        } catch (lookup) {
          if (lookup instanceof NotFoundException) throw new KeyInOtherPlanError(planId, keyId, { cause: err });
          throw lookup;
        }
      }
    });
  }

  detachKey(planId: string, keyId: string): Promise<void> {
    return mapErrors(async () => {
      try {
        await this.client.send(new DeleteUsagePlanKeyCommand({ usagePlanId: planId, keyId }));
      } catch (err) {
        if (!(err instanceof NotFoundException)) throw err;
      }
    });
  }

  deleteKey(keyId: string): Promise<void> {
    return mapErrors(async () => {
      try {
        await this.client.send(new DeleteApiKeyCommand({ apiKey: keyId }));
      } catch (err) {
        if (!(err instanceof NotFoundException)) throw err; // already gone
      }
    });
  }

  usage(planId: string, keyId: string, startDate: string, endDate: string): Promise<Map<string, number>> {
    return mapErrors(async () => {
      const out = await this.client.send(new GetUsageCommand({ usagePlanId: planId, keyId, startDate, endDate }));
      // One [used, remaining] pair per day from startDate, for the key asked.
      const byDay = new Map<string, number>();
      const days = out.items?.[keyId] ?? [];
      // Counted from the start date API Gateway answers with (it may differ from the one asked).
      const start = Date.parse(`${out.startDate ?? startDate}T00:00:00Z`);
      days.forEach((pair, i) => byDay.set(new Date(start + i * 86_400_000).toISOString().slice(0, 10), Number(pair?.[0] ?? 0)));
      return byDay;
    });
  }
}
