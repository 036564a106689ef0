// runtime.js - AgentRuntime (the agent-iam README's, DESIGN §7 and §10) in
// the remote mode of the C ai_runtime_*: the token of one agent process,
// kept fresh by POST /v1/tokens/refresh before it expires, used for
// checks, credentials, delegation and the environment of a sub-agent.
//
// Refresh timing is the C runtime's (src/runtime/runtime.c): due at
// expiresAt - refreshBeforeMs (default 5 min), and after a refresh of its
// own not before half of the new lifetime has passed (so a refreshBeforeMs
// longer than what a refresh grants cannot become a busy loop). A failure
// emits 'error' and retries after retryMinMs, doubling up to retryMaxMs,
// never later than the expiry. When the token cannot be extended (it has
// no maxExpiresAt, or has reached it) or has expired, 'error' is emitted
// once and refreshing ends. Timers, and the background refresh's socket,
// are unref()'d: the runtime never keeps the process alive; stop() also
// aborts a refresh under way. A listener that throws is reported (a
// process warning) and never stops refreshing.
import { EventEmitter } from 'node:events';

import { AgentIAMError } from './errors.js';
import { Client } from './client.js';
import { decodeToken, scopeMatches, timeMs } from './token.js';

export const AGENT_TOKEN_ENV = 'AGENT_TOKEN';
export const AGENT_IAM_URL_ENV = 'AGENT_IAM_URL';
export const AGENT_IAM_CA_CERT_ENV = 'AGENT_IAM_CA_CERT';

const MAX_WAIT_MS = 60000; // read the wall clock again at least this often
const MIN_RETRY_MS = 10;

function positive(v, dflt, name, integer = false) {
  if (v === undefined) return dflt;
  if (!((integer ? Number.isInteger(v) : Number.isFinite(v)) && v > 0)) {
    throw new AgentIAMError(`${name} must be a positive ${integer ? 'integer' : 'number'}`,
      { code: 'invalid_config' });
  }
  return v;
}

export class AgentRuntime extends EventEmitter {
  #client;
  #caFile;
  #claims;
  #cfg;
  #running = false;
  #timer = null;
  #abort = null;
  #ownRefresh = 0; // the refresher's last success (ms), 0: none
  #retryAt = 0;
  #backoff = 0;
  #failures = 0;
  #lastError = null;
  #lastRefresh = 0;
  #stops = 0; // stop() calls: a refresh that outlives one emits nothing

  /**
   * @param {string} token the serialized agent token
   * @param {import('../index.js').RuntimeConfig} [config]
   */
  constructor(token, config = {}) {
    super();
    const urls = config.urls ?? process.env[AGENT_IAM_URL_ENV];
    this.#caFile = config.caFile ?? (config.ca ? undefined : process.env[AGENT_IAM_CA_CERT_ENV] || undefined);
    this.#client = new Client({
      urls, token, caFile: this.#caFile, ca: config.ca, timeoutMs: config.timeoutMs,
    });
    this.#claims = decodeToken(token);
    this.#cfg = {
      refreshBeforeMs: positive(config.refreshBeforeMs, 5 * 60 * 1000, 'refreshBeforeMs'),
      refreshTtlMinutes: config.refreshTtlMinutes === undefined ? undefined
        : positive(config.refreshTtlMinutes, 0, 'refreshTtlMinutes', true),
      retryMinMs: positive(config.retryMinMs, 1000, 'retryMinMs'),
      retryMaxMs: positive(config.retryMaxMs, 60000, 'retryMaxMs'),
    };
    this.#cfg.retryMaxMs = Math.max(this.#cfg.retryMaxMs, this.#cfg.retryMinMs);
    if (config.onRefresh) this.on('refresh', config.onRefresh);
    if (config.onError) this.on('error', config.onError);
  }

  static fromSerialized(serialized, config) {
    return new AgentRuntime(serialized, config);
  }

  /** The token of $AGENT_TOKEN, the server(s) of $AGENT_IAM_URL and the CA
   * file of $AGENT_IAM_CA_CERT, unless config names them. */
  static fromEnvironment(config) {
    const t = process.env[AGENT_TOKEN_ENV];
    if (!t) throw new AgentIAMError(`${AGENT_TOKEN_ENV} is not set`, { code: 'invalid_config' });
    return new AgentRuntime(t, config);
  }

  /** The current serialized token. */
  get token() {
    return this.#client.token;
  }

  getSerializedToken() {
    return this.#client.token;
  }

  /** The current token's claims, decoded (not verified: see whoami()). */
  getToken() {
    return structuredClone(this.#claims);
  }

  getStatus() {
    return {
      agentId: this.#claims.agentId,
      tokenId: this.#claims.tokenId ?? null,
      expiresAt: this.#claims.expiresAt ?? null,
      maxExpiresAt: this.#claims.maxExpiresAt ?? null,
      refreshEnabled: this.#running,
      lastRefreshAt: this.#lastRefresh ? new Date(this.#lastRefresh).toISOString() : null,
      refreshFailures: this.#failures,
      lastError: this.#lastError,
      mode: 'remote',
    };
  }

  /** Start refreshing in the background. False (and nothing started) when
   * the token holds no scope matching system:token:refresh. */
  start() {
    if (this.#running) return true;
    if (!(this.#claims.scopes ?? []).some((p) => scopeMatches(p, 'system:token:refresh'))) {
      return false;
    }
    this.#running = true;
    this.#ownRefresh = this.#retryAt = this.#backoff = 0;
    this.#schedule();
    return true;
  }

  /** Stop refreshing (a refresh under way is aborted). No event follows. */
  stop() {
    this.#running = false;
    this.#stops++;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#abort?.abort();
  }

  /** Refresh now and use the new token: {token, tokenId, agentId, expiresAt}.
   * A new token that does not decode leaves the current one in place. */
  async refresh({ ttlMinutes, signal } = {}) {
    return this.#refresh({ ttlMinutes, signal });
  }

  async #refresh({ ttlMinutes, signal, background = false }) {
    const stops = this.#stops;
    const res = await this.#client.refresh({ ttlMinutes, signal, background });
    const claims = decodeToken(res?.token);
    this.#client.token = res.token;
    this.#claims = claims;
    this.#lastRefresh = Date.now();
    this.#failures = 0;
    this.#lastError = null;
    if (this.#running && !this.#abort) this.#schedule(); // a refresh by hand: plan again
    process.nextTick(() => {
      if (this.#stops === stops) this.#emit('refresh', res.token);
    });
    return res;
  }

  /** POST /v1/check: true when the current token allows scope on resource
   * (check() gives the reason of a denial). */
  async checkPermission(scope, resource = '', opts) {
    return (await this.#client.check(scope, resource, opts)).valid;
  }

  /** POST /v1/check: {valid, error?}; valid false is a denial (error: why). */
  check(scope, resource = '', opts) {
    return this.#client.check(scope, resource, opts);
  }

  getCredential(scope, resource = '', opts) {
    return this.#client.credential(scope, resource, opts);
  }

  /** A narrower token: the server's {token, tokenId, agentId, expiresAt, narrowed}. */
  delegate(request, opts) {
    return this.#client.delegate(request, opts);
  }

  whoami(opts) {
    return this.#client.whoami(opts);
  }

  /** The variables a sub-agent needs, with a token delegated by request:
   * AGENT_TOKEN, AGENT_IAM_URL and (when a CA file is used) AGENT_IAM_CA_CERT.
   * Spread it over process.env: spawn(cmd, args, {env: {...process.env, ...env}}). */
  async createSubprocessEnv(request, opts) {
    const child = await this.#client.delegate(request, opts);
    const env = { [AGENT_TOKEN_ENV]: child.token, [AGENT_IAM_URL_ENV]: this.#client.urls.join(',') };
    if (this.#caFile) env[AGENT_IAM_CA_CERT_ENV] = this.#caFile;
    return env;
  }

  // When the next refresh is due (ms since the epoch), by the C runtime's rule.
  #due(exp) {
    if (this.#retryAt > 0) return this.#retryAt;
    let due = exp - this.#cfg.refreshBeforeMs;
    if (this.#ownRefresh > 0) due = Math.max(due, this.#ownRefresh + (exp - this.#ownRefresh) / 2);
    return due;
  }

  #schedule() {
    clearTimeout(this.#timer);
    const exp = timeMs(this.#claims.expiresAt);
    const wait = exp === 0 ? MAX_WAIT_MS : this.#due(exp) - Date.now();
    this.#timer = setTimeout(() => this.#tick().catch((e) => warn('the refresher', e)),
      Math.min(Math.max(wait, 0), MAX_WAIT_MS));
    this.#timer.unref();
  }

  async #tick() {
    this.#timer = null;
    if (!this.#running) return;
    const stops = this.#stops; // a stop() (and start()) since: this tick is over
    const now = Date.now();
    const exp = timeMs(this.#claims.expiresAt);
    const maxExp = timeMs(this.#claims.maxExpiresAt);
    if (exp === 0 || now < this.#due(exp)) {
      this.#schedule(); // never expires, or woken early to read the clock
      return;
    }
    if (maxExp === 0 || exp >= maxExp || now >= exp) {
      this.#running = false;
      const why = now >= exp
        ? new AgentIAMError(`token expired at ${this.#claims.expiresAt} before it could be refreshed; refreshing stopped`,
          { code: 'token_expired' })
        : new AgentIAMError(`token cannot be refreshed beyond its maxExpiresAt (${this.#claims.maxExpiresAt ?? 'none'}); refreshing stopped`,
          { code: 'forbidden' });
      this.#fail(why);
      return;
    }
    const abort = new AbortController();
    this.#abort = abort;
    try {
      await this.#refresh({
        ttlMinutes: this.#cfg.refreshTtlMinutes, signal: abort.signal, background: true,
      });
      if (this.#stops !== stops) return;
      this.#ownRefresh = this.#lastRefresh;
      this.#retryAt = this.#backoff = 0;
    } catch (e) {
      if (this.#stops !== stops || !this.#running) return;
      this.#backoff = Math.min(this.#backoff ? this.#backoff * 2 : this.#cfg.retryMinMs, this.#cfg.retryMaxMs);
      const t = Date.now();
      const left = timeMs(this.#claims.expiresAt) - t;
      this.#retryAt = t + Math.max(Math.min(left, this.#backoff), MIN_RETRY_MS);
      this.#fail(e);
    } finally {
      if (this.#abort === abort) this.#abort = null;
    }
    if (this.#running) this.#schedule();
  }

  // A refresh failure: counted, then 'error' for whoever listens (an
  // EventEmitter 'error' without a listener would throw: none, no event).
  #fail(e) {
    this.#failures++;
    this.#lastError = e.message;
    this.#emit('error', e);
  }

  // emit(), each listener on its own: one that throws is reported, and
  // neither the others nor the refresher stop.
  #emit(name, arg) {
    for (const l of this.rawListeners(name)) {
      try {
        l.call(this, arg);
      } catch (e) {
        warn(`a '${name}' listener`, e);
      }
    }
  }
}

function warn(who, e) {
  process.emitWarning(`agent-iam: ${who} threw: ${e?.message ?? e}`, { code: 'AGENT_IAM_LISTENER' });
}
