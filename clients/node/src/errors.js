// errors.js - the errors of the agent API (docs/http-api.md): every
// failure is an AgentIAMError carrying the server's machine `code` and the
// HTTP `status` (0 when no answer came). A subclass per status family, so
// callers may test either `err.code` or `instanceof`. Messages never hold
// a token: they come from the server's "error" member or from this file.

export class AgentIAMError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, retryAfter?: number, cause?: unknown}} [opts]
   */
  constructor(message, { status = 0, code = 'internal_error', retryAfter, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }

  /** Is this error one of the given server codes? */
  is(...codes) {
    return codes.includes(this.code);
  }
}

/** 401: invalid_token, token_expired, token_revoked, unauthorized. */
export class AuthenticationError extends AgentIAMError {}
/** 403 forbidden: valid token, action not allowed. */
export class PermissionDeniedError extends AgentIAMError {}
/** 400, 404, 405, 409, 410, 413 (and a 307 not followed): the
 * request itself is wrong, or went to the wrong server. */
export class InvalidRequestError extends AgentIAMError {}
/** 429 rate_limited (see retryAfter). */
export class RateLimitedError extends AgentIAMError {}
/** 503, or no answer: connection_failed, timeout, aborted. */
export class UnavailableError extends AgentIAMError {}
/** 500 internal_error, 502 provider_error, anything else; bad_answer (a 2xx
 * answer that is not a JSON object). */
export class ServerError extends AgentIAMError {}

/** The error for an HTTP answer that is not 2xx. */
export function errorFromAnswer(status, body, headers = {}) {
  let msg;
  let code;
  try {
    const o = JSON.parse(body);
    if (typeof o?.error === 'string') msg = o.error;
    if (typeof o?.code === 'string') code = o.code;
  } catch {
    // not JSON: the status says enough
  }
  const ra = Number.parseInt(headers['retry-after'] ?? '', 10);
  const opts = {
    status,
    code: code ?? defaultCode(status),
    retryAfter: Number.isFinite(ra) ? ra : undefined,
  };
  const Cls =
    status === 401 ? AuthenticationError
      : status === 403 ? PermissionDeniedError
        : status === 429 ? RateLimitedError
          : status === 503 ? UnavailableError
            : status >= 300 && status < 500 ? InvalidRequestError
              : ServerError;
  return new Cls(msg ?? `server answered HTTP ${status}`, opts);
}

function defaultCode(status) {
  return {
    400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found',
    405: 'method_not_allowed', 413: 'payload_too_large', 429: 'rate_limited',
    502: 'provider_error', 503: 'unavailable',
  }[status] ?? 'internal_error';
}
