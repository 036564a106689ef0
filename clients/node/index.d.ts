// Types of agent-iam-client (index.js). Members follow docs/http-api.md.
import { EventEmitter } from 'node:events';

export interface ScopeConstraint {
  resources?: string[];
  notBefore?: string;
  notAfter?: string;
  maxUses?: number;
}

export interface DelegationRequest {
  agentId?: string;
  requestedScopes: string[];
  requestedConstraints?: Record<string, ScopeConstraint>;
  delegatable?: boolean;
  ttlMinutes?: number;
  inheritIdentity?: boolean;
  federation?: Record<string, unknown>;
  agentCapabilities?: Record<string, unknown>;
}

export interface DelegationResult {
  token: string;
  tokenId: string;
  agentId: string;
  expiresAt: string;
  /** Requested federation/capability fields the child got only as far as the parent's. */
  narrowed: string[];
}

export interface RefreshResult {
  token: string;
  tokenId: string;
  agentId: string;
  expiresAt: string;
}

export interface CheckResult {
  valid: boolean;
  /** Why the permission is denied (valid false). */
  error?: string;
}

export interface CredentialResult {
  credentialType: 'bearer_token' | 'aws_credentials' | 'api_key' | string;
  credential: Record<string, unknown>;
  expiresAt?: string;
  [member: string]: unknown;
}

/** A token's claims (GET /v1/whoami, or decodeToken: unverified). */
export interface TokenClaims {
  agentId: string;
  tokenId?: string;
  parentId?: string;
  /** Always present: decodeToken refuses a token without it (invalid_token). */
  scopes: string[];
  constraints?: Record<string, ScopeConstraint>;
  delegatable?: boolean;
  maxDelegationDepth?: number;
  currentDepth?: number;
  expiresAt?: string;
  maxExpiresAt?: string;
  [member: string]: unknown;
}

export interface CallOptions {
  /** Cancels the call: it rejects with an UnavailableError, code "aborted". */
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** One server, a comma-separated list, or an array: a leader, a follower or a group's voters. */
  urls: string | string[];
  /** The serialized agent token (the bearer). */
  token: string;
  /** PEM file of the CA the servers chain to (default: the system's CAs). */
  caFile?: string;
  /** The CA itself (PEM), instead of caFile; both given: invalid_config. */
  ca?: string | Buffer;
  /** One try on one server, default 15000. */
  timeoutMs?: number;
}

export class Client {
  constructor(options: ClientOptions);
  token: string;
  readonly urls: string[];
  check(scope: string, resource?: string, options?: CallOptions): Promise<CheckResult>;
  credential(scope: string, resource?: string, options?: CallOptions): Promise<CredentialResult>;
  delegate(request: DelegationRequest, options?: CallOptions): Promise<DelegationResult>;
  refresh(options?: { ttlMinutes?: number; background?: boolean } & CallOptions): Promise<RefreshResult>;
  whoami(options?: CallOptions): Promise<TokenClaims>;
}

/** The server's code, or one of the client's own for no answer. */
export type ErrorCode =
  | 'bad_request' | 'unauthorized' | 'invalid_token' | 'token_expired' | 'token_revoked'
  | 'forbidden' | 'not_found' | 'method_not_allowed' | 'not_leader' | 'gone'
  | 'payload_too_large' | 'rate_limited' | 'internal_error' | 'provider_error'
  | 'unavailable' | 'storage_full'
  | 'connection_failed' | 'timeout' | 'aborted' | 'bad_answer' | 'too_many_redirects'
  | 'invalid_config'
  | (string & {});

export class AgentIAMError extends Error {
  constructor(message: string, options?: { status?: number; code?: string; retryAfter?: number; cause?: unknown });
  /** HTTP status of the answer; 0 when none came. */
  readonly status: number;
  readonly code: ErrorCode;
  /** Seconds, from Retry-After (429, 503). */
  readonly retryAfter?: number;
  is(...codes: ErrorCode[]): boolean;
}
/** 401 */
export class AuthenticationError extends AgentIAMError {}
/** 403 */
export class PermissionDeniedError extends AgentIAMError {}
/** 400, 404, 405, 409, 410, 413 (and a 307 not followed: not_leader, too_many_redirects) */
export class InvalidRequestError extends AgentIAMError {}
/** 429 */
export class RateLimitedError extends AgentIAMError {}
/** 503, and no answer: connection_failed, timeout, aborted */
export class UnavailableError extends AgentIAMError {}
/** 500, 502, and bad_answer (a 2xx answer that is not a JSON object) */
export class ServerError extends AgentIAMError {}

export interface RuntimeConfig {
  /** Default: $AGENT_IAM_URL. */
  urls?: string | string[];
  /** Default: $AGENT_IAM_CA_CERT (unless ca is given). */
  caFile?: string;
  /** The CA itself (PEM), instead of caFile. createSubprocessEnv cannot pass
   * it on: a sub-agent gets no AGENT_IAM_CA_CERT (use caFile for that). */
  ca?: string | Buffer;
  timeoutMs?: number;
  /** Refresh this long before expiresAt; default 300000 (5 min). */
  refreshBeforeMs?: number;
  /** ttlMinutes asked of each refresh, a positive integer; default: the server's (max(remaining, 1 h)). */
  refreshTtlMinutes?: number;
  /** First retry after a failed refresh, doubling; default 1000. */
  retryMinMs?: number;
  /** Longest retry wait; default 60000. */
  retryMaxMs?: number;
  /** A listener that throws is reported (a process warning); refreshing goes on. */
  onRefresh?: (token: string) => void;
  onError?: (error: AgentIAMError) => void;
}

export interface RuntimeStatus {
  agentId: string;
  tokenId: string | null;
  expiresAt: string | null;
  maxExpiresAt: string | null;
  refreshEnabled: boolean;
  lastRefreshAt: string | null;
  refreshFailures: number;
  lastError: string | null;
  mode: 'remote';
}

export interface SubprocessEnv {
  AGENT_TOKEN: string;
  AGENT_IAM_URL: string;
  /** The runtime's caFile (or $AGENT_IAM_CA_CERT); absent with ca or the system's CAs. */
  AGENT_IAM_CA_CERT?: string;
  [name: string]: string | undefined;
}

export class AgentRuntime extends EventEmitter {
  constructor(token: string, config?: RuntimeConfig);
  static fromSerialized(serialized: string, config?: RuntimeConfig): AgentRuntime;
  static fromEnvironment(config?: RuntimeConfig): AgentRuntime;
  readonly token: string;
  getSerializedToken(): string;
  getToken(): TokenClaims;
  getStatus(): RuntimeStatus;
  /** False (nothing started) when the token has no system:token:refresh scope. */
  start(): boolean;
  stop(): void;
  refresh(options?: { ttlMinutes?: number } & CallOptions): Promise<RefreshResult>;
  /** valid of check(): a denial is false (check() gives its reason). */
  checkPermission(scope: string, resource?: string, options?: CallOptions): Promise<boolean>;
  check(scope: string, resource?: string, options?: CallOptions): Promise<CheckResult>;
  getCredential(scope: string, resource?: string, options?: CallOptions): Promise<CredentialResult>;
  delegate(request: DelegationRequest, options?: CallOptions): Promise<DelegationResult>;
  whoami(options?: CallOptions): Promise<TokenClaims>;
  createSubprocessEnv(request: DelegationRequest, options?: CallOptions): Promise<SubprocessEnv>;
  on(event: 'refresh', listener: (token: string) => void): this;
  on(event: 'error', listener: (error: AgentIAMError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export const AGENT_TOKEN_ENV: 'AGENT_TOKEN';
export const AGENT_IAM_URL_ENV: 'AGENT_IAM_URL';
export const AGENT_IAM_CA_CERT_ENV: 'AGENT_IAM_CA_CERT';

export function decodeToken(serialized: string): TokenClaims;
