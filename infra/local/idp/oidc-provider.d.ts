/**
 * The slice of oidc-provider@9 that the local identity provider uses. The package ships no
 * typings; these follow its source (lib/provider.js, lib/models/*, lib/helpers/defaults.js).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export type UnknownObject = Record<string, unknown>;

  /** Koa context as seen by configuration callbacks; absent outside a request. */
  export interface OidcCtx {
    type?: string;
    body?: unknown;
    status?: number;
    oidc?: {
      route?: string;
      body?: UnknownObject;
      params?: UnknownObject;
      entities?: { AuthorizationCode?: { scope?: string } };
    };
  }

  export interface ClientMetadata extends UnknownObject {
    client_id: string;
    client_secret?: string;
  }

  export interface Client {
    readonly clientId: string;
    readonly clientSecret?: string;
    readonly scope?: string;
    readonly grantTypes: string[];
    readonly redirectUris: string[];
    readonly tokenEndpointAuthMethod: string;
    readonly [extra: string]: unknown;
    metadata(): ClientMetadata;
  }

  export interface AdapterPayload extends UnknownObject {
    grantId?: string;
    uid?: string;
    userCode?: string;
    consumed?: number;
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg?: string; kid?: string } };
  }

  export class ResourceServer {
    constructor(identifier: string, info: ResourceServerInfo);
    readonly audience?: string;
    readonly scope?: string;
    readonly scopes: Set<string>;
    identifier(): string;
  }

  /** AccessToken and ClientCredentials instances. */
  export interface Token {
    readonly kind: string;
    jti?: string;
    clientId?: string;
    client?: Client;
    accountId?: string;
    scope?: string;
    gty?: string;
    resourceServer?: ResourceServer;
    readonly expiration: number;
    save(): Promise<string>;
  }

  export interface AccessTokenInit {
    accountId: string;
    client: Client;
    scope?: string;
    gty?: string;
    resourceServer?: ResourceServer;
  }

  export interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(indicator: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface PromptDetails {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  }

  export interface Interaction {
    uid: string;
    prompt: { name: string; reasons: string[]; details: PromptDetails };
    params: UnknownObject;
    session?: { accountId?: string; uid?: string };
    grantId?: string;
    returnTo: string;
  }

  export interface InteractionResults {
    login?: { accountId: string; remember?: boolean };
    consent?: { grantId?: string };
    error?: string;
    error_description?: string;
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): Promise<UnknownObject & { sub: string }>;
  }

  /** Koa-compatible configuration; checked by oidc-provider at construction. */
  export type Configuration = UnknownObject;

  export default class Provider {
    constructor(issuer: string, configuration: Configuration);
    readonly issuer: string;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResults,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): this;
    readonly Client: { find(id: string): Promise<Client | undefined>; readonly adapter: Adapter };
    readonly AccessToken: new (init: AccessTokenInit) => Token;
    readonly Grant: {
      new (init: { accountId: string; clientId: string }): Grant;
      find(id: string): Promise<Grant | undefined>;
    };
    readonly ResourceServer: typeof ResourceServer;
  }

  type OidcError = new (description?: string) => Error;
  export const errors: {
    InvalidTarget: OidcError;
    InvalidClientMetadata: OidcError;
  };
}
