"""agent-iam's Python client: the agent API of a leader or follower
(Client) and the AgentRuntime (Runtime). Standard library only."""
from .client import CheckResult, Client, parse_urls
from .errors import (AgentIAMError, BadRequest, ConnectionFailed, Forbidden,
                     InvalidRequest, InvalidToken, NotFound, PayloadTooLarge, ProviderError,
                     RateLimited, ServerError, TokenExpired, TokenRevoked,
                     Unauthorized, Unavailable)
from .runtime import AGENT_TOKEN_ENV, CA_ENV, URL_ENV, Runtime
from .token import decode_claims

__version__ = "0.1.0"
__all__ = [
    "Client", "CheckResult", "Runtime", "parse_urls", "decode_claims",
    "AGENT_TOKEN_ENV", "URL_ENV", "CA_ENV",
    "AgentIAMError", "ConnectionFailed", "BadRequest", "Unauthorized",
    "InvalidRequest", "InvalidToken", "TokenExpired", "TokenRevoked", "Forbidden", "NotFound",
    "PayloadTooLarge", "RateLimited", "Unavailable", "ProviderError",
    "ServerError",
]
