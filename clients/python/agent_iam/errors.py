"""The errors of agent-iam calls: one class per family of the server's
answers (docs/http-api.md), each with the HTTP status, the server's
machine `code` and its human `message`. No error ever holds a token."""
from __future__ import annotations

from typing import Dict, Optional, Type


class AgentIAMError(Exception):
    """A call failed. `status` is the HTTP status (0: no answer), `code`
    the server's machine code (or one of ours: connection_failed,
    timeout, invalid_token, bad_answer, not_leader, too_many_redirects),
    `message` the reason."""

    def __init__(self, status: int, code: str, message: str,
                 retry_after: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        head = "HTTP %d %s" % (self.status, self.code) if self.status \
            else self.code
        return "%s: %s" % (head, self.message)

    def __repr__(self) -> str:
        return "%s(status=%d, code=%r, message=%r)" % (
            type(self).__name__, self.status, self.code, self.message)


class ConnectionFailed(AgentIAMError):
    """No server answered (refused, unreachable, TLS failure; code
    timeout: no answer within the timeout)."""


class InvalidRequest(AgentIAMError):
    """The request is wrong or went to the wrong server: 405
    method_not_allowed, 409 not_leader, 410 gone, a 307 not followed, and
    the classes below."""


class BadRequest(InvalidRequest):
    """400: the request was malformed or invalid."""


class Unauthorized(AgentIAMError):
    """401: the bearer was refused."""


class InvalidToken(Unauthorized):
    """401 invalid_token: malformed, forged, or signed by an unknown key."""


class TokenExpired(Unauthorized):
    """401 token_expired."""


class TokenRevoked(Unauthorized):
    """401 token_revoked: the token, an ancestor or its agent is revoked."""


class Forbidden(AgentIAMError):
    """403: a valid token that is not allowed this (scope, constraint,
    use budget, delegation rule)."""


class NotFound(InvalidRequest):
    """404: unknown route or object (e.g. a provider not configured)."""


class PayloadTooLarge(InvalidRequest):
    """413: the body was over 64 KiB."""


class RateLimited(AgentIAMError):
    """429: too many writes for the agent; `retry_after` in seconds."""


class Unavailable(AgentIAMError):
    """503 (unavailable, storage_full): try later; `retry_after` when the
    server said."""


class ServerError(AgentIAMError):
    """500, 502 bad_gateway (a follower could not use the leader's
    answer) and any other unexpected answer."""


class ProviderError(ServerError):
    """502 provider_error: the credential provider failed."""


_BY_CODE: Dict[str, Type[AgentIAMError]] = {
    "bad_request": BadRequest,
    "unauthorized": Unauthorized,
    "invalid_token": InvalidToken,
    "token_expired": TokenExpired,
    "token_revoked": TokenRevoked,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "method_not_allowed": InvalidRequest,
    "not_leader": InvalidRequest,
    "gone": InvalidRequest,
    "payload_too_large": PayloadTooLarge,
    "rate_limited": RateLimited,
    "unavailable": Unavailable,
    "storage_full": Unavailable,
    "provider_error": ProviderError,
    "bad_gateway": ServerError,
    "internal_error": ServerError,
}

# the code of an answer that has none (as clients/node/src/errors.js)
_CODE_OF_STATUS: Dict[int, str] = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden",
    404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
    429: "rate_limited", 502: "provider_error", 503: "unavailable",
}

_BY_STATUS: Dict[int, Type[AgentIAMError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
    413: PayloadTooLarge, 429: RateLimited, 503: Unavailable,
}


def error_for(status: int, code: Optional[str], message: Optional[str],
              retry_after: Optional[int] = None) -> AgentIAMError:
    """The error of an answer: its class by the server's code, else by
    the status (another 3xx or 4xx: InvalidRequest; 5xx: ServerError)."""
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or (
        InvalidRequest if 300 <= status < 500 else ServerError)
    code = code or _CODE_OF_STATUS.get(status) or "internal_error"
    return cls(status, code, message or "server answered HTTP %d" % status,
               retry_after)
