"""Runtime: the AgentRuntime of one agent process (the Node package's,
and the C library's ai_runtime_* in remote mode): its token, kept fresh
by a background thread, and the calls an agent makes with it.

Refresh timing, as src/runtime/runtime.c: the thread sleeps until
expiresAt - refresh_before (default 5 min; at least half of the new
lifetime after a refresh of its own, so a short token cannot turn into a
busy loop), refreshes (POST /v1/tokens/refresh), swaps the token in and
calls on_refresh. A failure calls on_error and retries after retry_min,
doubling up to retry_max, never past the expiry. A token that cannot be
extended (expiresAt at maxExpiresAt, or none) or that expired is reported
once to on_error and the thread ends. The thread runs only when the token
holds a scope matching system:token:refresh."""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence, Union

from .client import Client, CheckResult
from .errors import AgentIAMError, Forbidden, TokenExpired
from .token import decode_claims, may_refresh, parse_time

__all__ = ["Runtime", "AGENT_TOKEN_ENV", "URL_ENV", "CA_ENV"]

AGENT_TOKEN_ENV = "AGENT_TOKEN"
URL_ENV = "AGENT_IAM_URL"        # as the C runtime reads them
CA_ENV = "AGENT_IAM_CA_CERT"
MAX_WAIT_S = 60.0                # re-read the clock at least this often
MIN_RETRY_S = 0.01


class Runtime:
    """`token`: the serialized agent token (default $AGENT_TOKEN); `urls`:
    the server(s) (default $AGENT_IAM_URL, a comma-separated list
    allowed); `ca_file` (default $AGENT_IAM_CA_CERT, else the system's
    CAs). Times are in seconds. Callbacks run on the refresher thread (or
    the thread of a successful refresh()): on_refresh(new_token),
    on_error(error). Thread-safe."""

    def __init__(self, token: Optional[str] = None,
                 urls: Union[str, Sequence[str], None] = None,
                 ca_file: Optional[str] = None, *,
                 timeout: float = 15.0,
                 refresh_before: float = 300.0,
                 refresh_ttl_minutes: Optional[int] = None,
                 retry_min: float = 1.0, retry_max: float = 60.0,
                 on_refresh: Optional[Callable[[str], None]] = None,
                 on_error: Optional[Callable[[AgentIAMError], None]] = None
                 ) -> None:
        token = token if token is not None else os.environ.get(AGENT_TOKEN_ENV)
        if not token:
            raise ValueError("no agent token (give one or set %s)"
                             % AGENT_TOKEN_ENV)
        urls = urls if urls is not None else os.environ.get(URL_ENV)
        if not urls:
            raise ValueError("no server URL (give urls or set %s)" % URL_ENV)
        ca_file = ca_file if ca_file is not None else \
            os.environ.get(CA_ENV) or None
        self._claims = decode_claims(token)  # ValueError: not a token
        self._token = token
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._wake = threading.Event()
        self._refresher: Optional[Client] = None
        self.refresh_before = refresh_before
        self.refresh_ttl_minutes = refresh_ttl_minutes
        self.retry_min = retry_min
        self.retry_max = max(retry_max, retry_min)
        self.on_refresh = on_refresh
        self.on_error = on_error
        self.client = Client(urls, lambda: self.token, ca_file, timeout)
        self.refreshes = 0
        self.failures = 0
        self.last_error: Optional[AgentIAMError] = None
        self._own_refresh = 0.0

    @classmethod
    def from_environment(cls, **kwargs: Any) -> "Runtime":
        """A runtime for $AGENT_TOKEN, $AGENT_IAM_URL, $AGENT_IAM_CA_CERT
        (what subprocess_env sets for a child)."""
        if not os.environ.get(AGENT_TOKEN_ENV):
            raise ValueError("%s is not set" % AGENT_TOKEN_ENV)
        return cls(None, **kwargs)

    def __repr__(self) -> str:
        return "Runtime(agent_id=%r, urls=%r)" % (self.agent_id,
                                                  self.client.urls)

    # --- the token -----------------------------------------------------

    @property
    def token(self) -> str:
        """The current serialized token."""
        with self._lock:
            return self._token

    @property
    def claims(self) -> Dict[str, Any]:
        """The current token's members, decoded (not verified)."""
        with self._lock:
            return dict(self._claims)

    @property
    def agent_id(self) -> Optional[str]:
        return self.claims.get("agentId")

    @property
    def expires_at(self) -> Optional[float]:
        """The current token's expiry, seconds since the epoch."""
        return parse_time(self.claims.get("expiresAt"))

    def _install(self, token: str) -> None:
        try:
            claims = decode_claims(token)
        except ValueError:
            raise AgentIAMError(200, "bad_answer", "the refreshed token "
                                "is not a serialized agent token") from None
        with self._lock:
            self._token, self._claims = token, claims
            self.refreshes += 1
            self.failures = 0
            self.last_error = None

    # --- calls with the current token ----------------------------------

    def check(self, scope: str, resource: str = "") -> CheckResult:
        return self.client.check(scope, resource)

    def credential(self, scope: str, resource: str = "") -> Dict[str, Any]:
        return self.client.credential(scope, resource)

    def delegate(self, agent_id: str, requested_scopes: Sequence[str],
                 **kwargs: Any) -> Dict[str, Any]:
        """Client.delegate with the current token."""
        return self.client.delegate(agent_id, requested_scopes, **kwargs)

    def whoami(self) -> Dict[str, Any]:
        return self.client.whoami()

    def refresh(self, ttl_minutes: Optional[int] = None) -> str:
        """Refresh the token now and swap it in; returns the new token.
        The token is unchanged on error."""
        answer = self.client.refresh(
            ttl_minutes if ttl_minutes is not None
            else self.refresh_ttl_minutes)
        token = answer.get("token")
        if not isinstance(token, str):
            raise AgentIAMError(200, "bad_answer", "refresh gave no token")
        self._install(token)
        self._wakeup()
        if self.on_refresh is not None:
            self.on_refresh(token)
        return token

    def subprocess_env(self, agent_id: str, requested_scopes: Sequence[str],
                       ttl_minutes: Optional[int] = None,
                       **kwargs: Any) -> Dict[str, str]:
        """Delegate a narrower token for a child process and return the
        variables its Runtime.from_environment() needs: AGENT_TOKEN,
        AGENT_IAM_URL and (when one is set) AGENT_IAM_CA_CERT. Merge them
        into the child's environment: env={**os.environ, **vars}."""
        child = self.delegate(agent_id, requested_scopes,
                              ttl_minutes=ttl_minutes, **kwargs)
        env = {AGENT_TOKEN_ENV: child["token"],
               URL_ENV: ",".join(self.client.urls)}
        if self.client.ca_file:
            env[CA_ENV] = self.client.ca_file
        return env

    def status(self) -> Dict[str, Any]:
        """agentId, tokenId, expiresAt, maxExpiresAt, refreshEnabled,
        refreshes, refreshFailures, lastError (as the C runtime's)."""
        c = self.claims
        with self._lock:
            return {"agentId": c.get("agentId"), "tokenId": c.get("tokenId"),
                    "expiresAt": c.get("expiresAt"),
                    "maxExpiresAt": c.get("maxExpiresAt"),
                    "refreshEnabled": self.running,
                    "refreshes": self.refreshes,
                    "refreshFailures": self.failures,
                    "lastError": str(self.last_error)
                    if self.last_error else None}

    # --- the refresher -------------------------------------------------

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def start(self) -> "Runtime":
        """Start the background refresher (when the token may refresh).
        A second start while running does nothing."""
        if self.running or not may_refresh(self.claims):
            return self
        self._stop.clear()
        # the refresher's own client, which stop() closes to abort a call
        self._refresher = Client(self.client.urls, lambda: self.token,
                                 self.client.ca_file, self.client.timeout)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="agent-iam-refresher")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the refresher and join it: a refresh in flight is
        aborted; no callback runs once it returns."""
        t = self._thread
        self._stop.set()
        self._wakeup()
        if self._refresher is not None:
            self._refresher.close()
        if t is not None:
            t.join()
        self._thread = None

    def __enter__(self) -> "Runtime":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _wakeup(self) -> None:
        self._wake.set()

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(min(max(seconds, 0.0), MAX_WAIT_S))

    def _report(self, error: AgentIAMError) -> None:
        with self._lock:
            self.last_error = error
        if self.on_error is not None and not self._stop.is_set():
            _callback(self.on_error, error)

    def _run(self) -> None:
        client = self._refresher
        assert client is not None
        retry_at = backoff = 0.0
        while not self._stop.is_set():
            self._wake.clear()  # a wake-up from now on ends the next wait
            c = self.claims
            now = time.time()
            exp, maxexp = parse_time(c.get("expiresAt")), \
                parse_time(c.get("maxExpiresAt"))
            if exp is None:
                self._sleep(MAX_WAIT_S)
                continue
            due = exp - self.refresh_before
            own = self._own_refresh
            if own > 0 and due < own + (exp - own) / 2:
                due = own + (exp - own) / 2
            if retry_at > 0:
                due = retry_at
            if now < due:
                self._sleep(due - now)
                continue
            if now >= exp:
                self._report(TokenExpired(0, "token_expired",
                                          "token expired before it could be "
                                          "refreshed; refreshing stopped"))
                return
            if maxexp is None or exp >= maxexp:
                self._report(Forbidden(0, "forbidden",
                                       "token cannot be refreshed beyond its "
                                       "maxExpiresAt; refreshing stopped"))
                return
            try:
                answer = client.refresh(self.refresh_ttl_minutes)
                token = answer.get("token")
                if not isinstance(token, str):
                    raise AgentIAMError(200, "bad_answer",
                                        "refresh gave no token")
                self._install(token)
            except Exception as e:  # noqa: BLE001 - the thread must go on
                if self._stop.is_set():
                    return
                if not isinstance(e, AgentIAMError):
                    e = AgentIAMError(0, "bad_answer", "refresh failed: %s"
                                      % type(e).__name__)
                with self._lock:
                    self.failures += 1
                backoff = min(backoff * 2 if backoff else self.retry_min,
                              self.retry_max)
                now = time.time()
                retry_at = now + max(min(exp - now, backoff), MIN_RETRY_S)
                self._report(e)
                continue
            self._own_refresh = time.time()
            retry_at = backoff = 0.0
            if self._stop.is_set():
                return
            if self.on_refresh is not None:
                _callback(self.on_refresh, token)


def _callback(fn: Callable[[Any], None], arg: Any) -> None:
    """A callback on the refresher thread: what it raises must not end
    the refreshing (it is printed, as threading prints what ends a
    thread, without the argument, which may be a token)."""
    try:
        fn(arg)
    except Exception:  # noqa: BLE001 - any error of the caller's code
        import traceback
        traceback.print_exc()
