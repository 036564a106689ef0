// transport.js - one agent API call over HTTPS (node:https) to a list of
// server URLs, by the rule of the C code's src/http/failover.c:
//
//  - a try that made no connection (nothing sent), or that was answered
//    503 (a leader group in an election; a voter that cannot count a use),
//    moves to the next URL, for up to ELECTION_MS, pausing PAUSE_MS after
//    each full round; with one URL there is no second try;
//  - a 307 (not_leader) is followed to its Location, at most MAX_HOPS times
//    (then too_many_redirects, as the Python client),
//    when that Location is on one of the configured servers (same scheme,
//    host and port; the bearer goes nowhere else): the voter did not act on
//    the request, so sending it again is safe;
//  - any other failure (a reset, a timeout, an answer) is final: a request
//    that may have arrived is never sent twice (a credential consumes a use).
//
// Every call opens its own connection (no keep-alive pool), so an idle
// socket closed by the server can never turn a request into a doubtful one
// and no idle socket keeps the process alive (a call in flight does, unless
// made with `background`). The bearer token goes in the Authorization
// header only, never in an error message. TLS certificates are always
// checked (NODE_TLS_REJECT_UNAUTHORIZED does not turn that off).
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  AgentIAMError, InvalidRequestError, ServerError, UnavailableError, errorFromAnswer,
} from './errors.js';

const ELECTION_MS = 4000;
const PAUSE_MS = 100;
const MAX_HOPS = 3;
const BODY_MAX = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 15000;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** A server URL we may send a bearer to: https, or http to this machine. */
function usable(u) {
  return (u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname))) &&
    u.username === '' && u.password === '';
}

/** "a,b" or ["a","b"] -> ["a","b"] (no trailing slash), checked. */
export function parseUrls(urls) {
  const list = (Array.isArray(urls) ? urls : String(urls ?? '').split(','))
    .map((s) => String(s).trim())
    .filter((s) => s !== '');
  if (list.length === 0) {
    throw new AgentIAMError('no server URL (urls, or AGENT_IAM_URL)', { code: 'invalid_config' });
  }
  return list.map((s) => {
    let u;
    try {
      u = new URL(s);
    } catch {
      throw new AgentIAMError('a server URL does not parse', { code: 'invalid_config' });
    }
    if (!usable(u)) {
      throw new AgentIAMError(
        `server URL ${u.host} must be https:// (http only to 127.0.0.1/localhost), without user info`,
        { code: 'invalid_config' });
    }
    return u.href.replace(/\/+$/, '');
  });
}

export class Transport {
  #urls;
  #origins; // of #urls: where a 307 may be followed
  #ca;
  #timeoutMs;

  constructor({ urls, caFile, ca, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    this.#urls = parseUrls(urls);
    this.#origins = new Set(this.#urls.map((s) => new URL(s).origin));
    if (ca !== undefined && caFile) {
      throw new AgentIAMError('give ca or caFile, not both', { code: 'invalid_config' });
    }
    this.#ca = ca ?? (caFile ? readCa(caFile) : undefined);
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new AgentIAMError('timeoutMs must be a positive number', { code: 'invalid_config' });
    }
    this.#timeoutMs = timeoutMs;
  }

  get urls() {
    return [...this.#urls];
  }

  /** The parsed JSON answer of METHOD path, or an AgentIAMError.
   * background: the call (its socket, timers, pauses) does not keep the
   * process alive. */
  async request(method, path, { token, body, signal, background = false } = {}) {
    const opts = { token, signal, background };
    const text = body === undefined ? undefined : JSON.stringify(body);
    const n = this.#urls.length;
    const until = performance.now() + ELECTION_MS;
    let cur = 0;
    let tries = 0;
    // the failover rule: true (and cur the next URL) when another try is worth it
    const next = async (notSent, status) => {
      if (n < 2) return false;
      tries++;
      if (performance.now() >= until) return false;
      if (!notSent && status !== 503) return false;
      if (tries % n === 0) await pause(PAUSE_MS, signal, background);
      cur = (cur + 1) % n;
      return true;
    };
    for (;;) {
      let res;
      try {
        res = await this.#follow(this.#urls[cur] + path, method, text, opts);
      } catch (e) {
        if (e.notSent && (await next(true, 0))) continue;
        throw e;
      }
      if (res.status >= 200 && res.status < 300) return parseJson(res.status, res.body);
      if (res.status === 503 && (await next(false, 503))) continue;
      throw errorFromAnswer(res.status, res.body, res.headers);
    }
  }

  /** One try on url, following 307s to the leader. */
  async #follow(url, method, text, opts) {
    for (let hops = 0; ; hops++) {
      const res = await this.#once(url, method, text, opts);
      if (res.status !== 307 || !res.headers.location) return res;
      if (hops >= MAX_HOPS) {
        throw new InvalidRequestError(`no leader answered after ${MAX_HOPS} redirects`,
          { status: 307, code: 'too_many_redirects' });
      }
      let to;
      try {
        to = new URL(res.headers.location, url);
      } catch {
        return res;
      }
      if (!this.#origins.has(to.origin)) {
        throw new InvalidRequestError(
          `server ${new URL(url).host} redirects to the leader at ${to.origin}, ` +
          'which is not one of the configured URLs: not followed', { status: 307, code: 'not_leader' });
      }
      url = to.href;
    }
  }

  #once(url, method, text, { token, signal, background }) {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      const where = u.host;
      if (signal?.aborted) {
        reject(aborted(where, signal));
        return;
      }
      const headers = { Accept: 'application/json', 'User-Agent': 'agent-iam-node/0.1' };
      if (token) headers.Authorization = `Bearer ${token}`;
      if (text !== undefined) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = Buffer.byteLength(text);
      }
      let connected = false;
      let settled = false;
      let failure;
      const finish = (fn, v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn(v);
      };
      const mod = u.protocol === 'https:' ? https : http;
      const req = mod.request(u, {
        method, headers, ca: this.#ca, rejectUnauthorized: true, agent: false,
      });
      const timer = setTimeout(() => {
        failure = new UnavailableError(`server ${where}: no answer within ${this.#timeoutMs} ms`,
          { code: 'timeout' });
        req.destroy(failure);
      }, this.#timeoutMs);
      if (background) timer.unref();
      const onAbort = () => {
        failure = aborted(where, signal);
        req.destroy(failure);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('socket', (s) => {
        if (background) s.unref();
        if (!s.connecting) connected = true;
        else s.once('connect', () => { connected = true; });
      });
      // every way a try can fail ends here (the request's errors, the
      // answer's, a close without either); the first one counts
      const fail = (e) => {
        const err = failure ?? new UnavailableError(
          `server ${where} unreachable: ${e?.code ?? e?.message ?? 'connection closed'}`,
          { code: 'connection_failed', cause: e });
        // no connection: nothing reached a server (an abort is final anyway)
        err.notSent = !connected && err.code !== 'aborted';
        finish(reject, err);
      };
      req.on('error', fail);
      req.on('close', () => fail());
      req.on('response', (res) => {
        const chunks = [];
        let size = 0;
        res.on('data', (c) => {
          size += c.length;
          if (size > BODY_MAX) {
            failure = new ServerError(`server ${where}: answer over ${BODY_MAX} bytes`,
              { status: res.statusCode, code: 'bad_answer' });
            req.destroy(failure);
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => finish(resolve, {
          status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'),
        }));
        res.on('error', fail);
        res.on('aborted', () => fail());
      });
      req.end(text);
    });
  }
}

function readCa(file) {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new AgentIAMError(`cannot read the CA file ${file}: ${e.code ?? e.message}`,
      { code: 'invalid_config', cause: e });
  }
}

function aborted(where, signal) {
  return new UnavailableError(`call to ${where} aborted`, { code: 'aborted', cause: signal?.reason });
}

async function pause(ms, signal, background) {
  try {
    await sleep(ms, undefined, { signal, ref: !background });
  } catch {
    throw aborted('the servers', signal);
  }
}

/** A 2xx answer's body: a JSON object, or a bad_answer error. */
function parseJson(status, text) {
  let o;
  try {
    o = JSON.parse(text);
  } catch {
    // not JSON: below
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new ServerError(`the server's answer (HTTP ${status}) is not a JSON object`,
      { status, code: 'bad_answer' });
  }
  return o;
}
