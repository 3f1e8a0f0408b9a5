/**
 * The identity-provider port for the local provider that `npm start` runs (oidc-provider).
 * Machine clients are created by RFC 7591 dynamic registration; users, secret rotation and
 * client deletion go through the provider's JSON admin API (`/local-admin`), since RFC 7592 as
 * oidc-provider implements it cannot rotate a secret.
 */
import { randomBytes } from 'node:crypto';
import { UpstreamUnavailableError } from '../core/errors.js';
import {
  identityProviderErrorFor,
  type CreateMachineClientInput,
  type CreateUserInput,
  type IdentityProvider,
  type IdpUser,
  type ListedMachineClient,
  type ListUsersQuery,
  type MachineClient,
  type UpdateUserInput,
  type UserPage,
} from '../core/identity-provider.js';

export interface LocalIdentityProviderOptions {
  /** Origin of the local provider, e.g. http://127.0.0.1:4000 */
  baseUrl: string;
  /** Bearer token of /local-admin. */
  adminToken: string;
  /** RFC 7591 initial access token; defaults to the admin token. */
  registrationToken?: string | undefined;
  timeoutMs?: number;
}

interface Answer {
  status: number;
  json: Record<string, unknown> | undefined;
}

export class LocalIdentityProvider implements IdentityProvider {
  readonly #o: Required<Omit<LocalIdentityProviderOptions, 'registrationToken'>> & { registrationToken: string };
  #registrationEndpoint: string | undefined;

  constructor(o: LocalIdentityProviderOptions) {
    this.#o = { timeoutMs: 5000, ...o, baseUrl: o.baseUrl.replace(/\/$/, ''), registrationToken: o.registrationToken ?? o.adminToken };
  }

  async #call(method: string, url: string, token: string, body?: unknown): Promise<Answer> {
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
    } catch (err) {
      throw new UpstreamUnavailableError('ERR_IDP_UNAVAILABLE', 'the local identity provider did not answer', 5, { cause: err });
    }
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status >= 500 || res.status === 429) throw new UpstreamUnavailableError('ERR_IDP_UNAVAILABLE', `the local identity provider answered ${res.status}`, 5);
    return { status: res.status, json };
  }

  #admin(method: string, path: string, body?: unknown): Promise<Answer> {
    return this.#call(method, `${this.#o.baseUrl}/local-admin${path}`, this.#o.adminToken, body);
  }

  async #registration(): Promise<string> {
    if (!this.#registrationEndpoint) {
      const { json } = await this.#call('GET', `${this.#o.baseUrl}/.well-known/openid-configuration`, '');
      const ep = json?.registration_endpoint;
      if (typeof ep !== 'string') throw new UpstreamUnavailableError('ERR_IDP_UNAVAILABLE', 'the local provider offers no registration endpoint', 5);
      this.#registrationEndpoint = ep;
    }
    return this.#registrationEndpoint;
  }

  async createMachineClient(input: CreateMachineClientInput): Promise<MachineClient> {
    const { status, json } = await this.#call('POST', await this.#registration(), this.#o.registrationToken, {
      client_name: input.name,
      application_type: 'web',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
      ...(input.scopes.length > 0 ? { scope: input.scopes.join(' ') } : {}),
      tenant_id: input.tenantId,
      key_id: input.keyId,
    });
    if (status !== 201 || typeof json?.client_id !== 'string' || typeof json.client_secret !== 'string') throw refusal(status, json);
    return { clientId: json.client_id, clientSecret: json.client_secret };
  }

  async rotateClientSecret(clientId: string): Promise<MachineClient> {
    const { status, json } = await this.#admin('POST', `/clients/${encodeURIComponent(clientId)}/rotate-secret`);
    if (status !== 200 || typeof json?.client_secret !== 'string') throw refusal(status, json);
    return { clientId, clientSecret: json.client_secret };
  }

  async deleteMachineClient(clientId: string): Promise<void> {
    const { status, json } = await this.#admin('DELETE', `/clients/${encodeURIComponent(clientId)}`);
    if (status !== 204 && status !== 404) throw refusal(status, json);
  }

  async listMachineClients(filter: { tenantId?: string | undefined; keyId?: string | undefined } = {}): Promise<ListedMachineClient[]> {
    const params = new URLSearchParams();
    if (filter.tenantId !== undefined) params.set('tenant_id', filter.tenantId);
    if (filter.keyId !== undefined) params.set('key_id', filter.keyId);
    const { status, json } = await this.#admin('GET', `/clients?${params}`);
    if (status !== 200 || !Array.isArray(json?.clients)) throw refusal(status, json);
    return (json.clients as { client_id?: unknown; tenant_id?: unknown; key_id?: unknown }[]).flatMap((c) =>
      typeof c.client_id === 'string' && typeof c.tenant_id === 'string' && typeof c.key_id === 'string' ? [{ clientId: c.client_id, tenantId: c.tenant_id, keyId: c.key_id }] : [],
    );
  }

  async createUser(input: CreateUserInput): Promise<IdpUser> {
    const { status, json } = await this.#admin('POST', '/users', {
      email: input.email,
      name: input.name,
      password: input.password ?? randomBytes(24).toString('base64url'),
      tenant_id: input.tenantId,
      roles: input.roles,
    });
    if (status !== 201) throw refusal(status, json);
    return toUser(json);
  }

  async getUser(userId: string): Promise<IdpUser | undefined> {
    const { status, json } = await this.#admin('GET', `/users/${encodeURIComponent(userId)}`);
    if (status === 404) return undefined;
    if (status !== 200) throw refusal(status, json);
    return toUser(json);
  }

  async listUsers(q: ListUsersQuery): Promise<UserPage> {
    const params = new URLSearchParams({ tenant_id: q.tenantId, page: String(q.page), per_page: String(q.perPage) });
    if (q.email !== undefined) params.set('email', q.email);
    const { status, json } = await this.#admin('GET', `/users?${params}`);
    if (status !== 200 || !Array.isArray(json?.users)) throw refusal(status, json);
    return { users: (json.users as unknown[]).map((u) => toUser(u as Record<string, unknown>)), total: Number(json.total ?? 0), page: q.page, perPage: q.perPage };
  }

  async updateUser(userId: string, patch: UpdateUserInput): Promise<IdpUser> {
    const { status, json } = await this.#admin('PATCH', `/users/${encodeURIComponent(userId)}`, patch);
    if (status !== 200) throw refusal(status, json);
    return toUser(json);
  }

  async deleteUser(userId: string): Promise<void> {
    const { status, json } = await this.#admin('DELETE', `/users/${encodeURIComponent(userId)}`);
    if (status !== 204 && status !== 404) throw refusal(status, json);
  }
}

function refusal(status: number, json: Record<string, unknown> | undefined) {
  const message = typeof json?.message === 'string' ? json.message : typeof json?.error_description === 'string' ? json.error_description : `answered ${status}`;
  return identityProviderErrorFor(status, message);
}

function toUser(json: Record<string, unknown> | undefined): IdpUser {
  const j = json ?? {};
  return {
    userId: String(j.user_id ?? ''),
    email: String(j.email ?? ''),
    name: typeof j.name === 'string' ? j.name : undefined,
    tenantId: typeof j.tenant_id === 'string' ? j.tenant_id : undefined,
    roles: Array.isArray(j.roles) ? j.roles.filter((r): r is string => typeof r === 'string') : [],
    blocked: j.blocked === true,
    emailVerified: true,
    createdAt: typeof j.created_at === 'string' ? j.created_at : undefined,
    lastLogin: undefined,
  };
}
