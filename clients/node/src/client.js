// client.js - the agent API (docs/http-api.md "Agent API") with one agent
// token as the bearer, against a leader, a follower or a leader group's
// voters (a URL list: see transport.js for the failover rule).
import { AgentIAMError } from './errors.js';
import { Transport } from './transport.js';

// What an HTTP header value may hold: a token with anything else is
// refused here, before it could reach a header (or an error message).
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

export class Client {
  #transport;
  #token;

  /**
   * @param {{urls: string|string[], token: string, caFile?: string, ca?: string|Buffer,
   *          timeoutMs?: number}} opts
   */
  constructor({ urls, token, caFile, ca, timeoutMs } = {}) {
    this.#transport = new Transport({ urls, caFile, ca, timeoutMs });
    this.token = token;
  }

  /** The bearer token (serialized); settable, e.g. after a refresh. */
  get token() {
    return this.#token;
  }

  set token(t) {
    if (typeof t !== 'string' || !TOKEN_CHARS.test(t)) {
      throw new AgentIAMError('no token, or a token with characters a header cannot carry',
        { code: 'invalid_config' });
    }
    this.#token = t;
  }

  /** The server URLs, in the order they are tried. */
  get urls() {
    return this.#transport.urls;
  }

  /** POST /v1/check: {valid, error?}; valid false is a denial, not an error. */
  async check(scope, resource = '', { signal } = {}) {
    const o = await this.#call('POST', '/v1/check', { scope, resource }, signal);
    return typeof o.error === 'string' ? { valid: o.valid === true, error: o.error } : { valid: o.valid === true };
  }

  /** POST /v1/credentials: the CredentialResult (consumes a use of the scope). */
  credential(scope, resource = '', { signal } = {}) {
    return this.#call('POST', '/v1/credentials', { scope, resource }, signal);
  }

  /** POST /v1/tokens/delegate: {token, tokenId, agentId, expiresAt, narrowed}. */
  delegate(request, { signal } = {}) {
    return this.#call('POST', '/v1/tokens/delegate', request, signal);
  }

  /** POST /v1/tokens/refresh: {token, tokenId, agentId, expiresAt}. The
   * client keeps its token: set `client.token` to the new one to use it.
   * background: the call does not keep the process alive. */
  refresh({ ttlMinutes, signal, background } = {}) {
    return this.#call('POST', '/v1/tokens/refresh',
      ttlMinutes === undefined ? {} : { ttlMinutes }, signal, background);
  }

  /** GET /v1/whoami: the token's claims, as the server verified them. */
  whoami({ signal } = {}) {
    return this.#call('GET', '/v1/whoami', undefined, signal);
  }

  #call(method, path, body, signal, background) {
    return this.#transport.request(method, path, { token: this.#token, body, signal, background });
  }
}
