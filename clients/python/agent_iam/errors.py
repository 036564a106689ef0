"""The errors of agent-iam calls: one class per family of the server's
answers (docs/http-api.md), each with the HTTP status, the server's
machine `code` and its human `message`. No error ever holds a token."""
from __future__ import annotations

from typing import Dict, Optional, Type


class AgentIAMError(Exception):
    """A call failed. `status` is the HTTP status (0: no answer), `code`
    the server's machine code (or one of ours: connection_failed,
    bad_answer, too_many_redirects), `message` the reason."""

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
    """No server answered (refused, unreachable, TLS failure, timeout)."""


class BadRequest(AgentIAMError):
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


class NotFound(AgentIAMError):
    """404: unknown route or object (e.g. a provider not configured)."""


class PayloadTooLarge(AgentIAMError):
    """413: the body was over 64 KiB."""


class RateLimited(AgentIAMError):
    """429: too many writes for the agent; `retry_after` in seconds."""


class Unavailable(AgentIAMError):
    """503 (unavailable, storage_full): try later; `retry_after` when the
    server said."""


class ProviderError(AgentIAMError):
    """502: the credential provider failed."""


class ServerError(AgentIAMError):
    """500 and any other unexpected answer."""


_BY_CODE: Dict[str, Type[AgentIAMError]] = {
    "bad_request": BadRequest,
    "unauthorized": Unauthorized,
    "invalid_token": InvalidToken,
    "token_expired": TokenExpired,
    "token_revoked": TokenRevoked,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "payload_too_large": PayloadTooLarge,
    "rate_limited": RateLimited,
    "unavailable": Unavailable,
    "storage_full": Unavailable,
    "provider_error": ProviderError,
    "internal_error": ServerError,
}

_BY_STATUS: Dict[int, Type[AgentIAMError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
    413: PayloadTooLarge, 429: RateLimited, 502: ProviderError,
    503: Unavailable,
}


def error_for(status: int, code: Optional[str], message: Optional[str],
              retry_after: Optional[int] = None) -> AgentIAMError:
    """The error of an answer: its class by the server's code, else by
    the status."""
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status, ServerError)
    return cls(status, code or "http_%d" % status,
               message or "server answered HTTP %d" % status, retry_after)
