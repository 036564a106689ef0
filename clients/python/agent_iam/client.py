"""Client: the agent API of a leader or follower (docs/http-api.md) over
HTTPS, with the agent token as the bearer.

A list of URLs (the voters of a leader group, or a leader and its
followers) is gone round as src/http/failover.c does for the C runtime:
the next URL is tried when the connection could not be made (nothing was
sent) or the answer was 503 (an election; a voter that cannot count a
use), for up to 4 s, pausing 100 ms after each full round. A request that
may have arrived is never sent again (a credential request consumes a
use). A 307 (`not_leader`) is followed to its Location, a few hops,
when that is one of the URLs given (the token goes to no other host)."""
from __future__ import annotations

import http.client
import io
import json
import socket
import ssl
import threading
import time
from typing import (Any, Callable, Dict, List, Optional, Sequence, Set,
                    Union)
from urllib.parse import urljoin, urlsplit

from .errors import (AgentIAMError, ConnectionFailed, InvalidRequest,
                     InvalidToken, error_for)
from .token import sendable

__all__ = ["Client", "CheckResult", "parse_urls"]

VERSION = "0.1.0"
FAILOVER_WINDOW_S = 4.0  # RT_ELECTION_MS of the C runtime
FAILOVER_PAUSE_S = 0.1
MAX_REDIRECTS = 3
BODY_MAX = 1024 * 1024   # the largest answer read (RT_BODY_MAX)
LOOPBACK = ("127.0.0.1", "localhost", "::1")

TokenSource = Union[str, Callable[[], str]]


def parse_urls(urls: Union[str, Sequence[str]]) -> List[str]:
    """A URL, a comma-separated list or a sequence of them, checked:
    https, or plain http to the loopback only; no user info."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    out = [u.strip().rstrip("/") for u in items if u and u.strip()]
    if not out:
        raise ValueError("no server URL")
    for u in out:
        _check_url(u)
    return out


def _check_url(url: str) -> None:
    p = urlsplit(url)
    if p.scheme not in ("https", "http") or not p.hostname:
        raise ValueError("server URL must be https://host[:port]")
    if p.scheme == "http" and p.hostname not in LOOPBACK:
        raise ValueError("plain http only to 127.0.0.1 or localhost")
    if p.username is not None or p.password is not None:
        raise ValueError("server URL must not hold user info")


class CheckResult:
    """The answer of check(): true when allowed; `error` the reason when
    not."""

    def __init__(self, valid: bool, error: Optional[str] = None) -> None:
        self.valid = valid
        self.error = error

    def __bool__(self) -> bool:
        return self.valid

    def __repr__(self) -> str:
        return "CheckResult(valid=%r, error=%r)" % (self.valid, self.error)


class _Answer:
    def __init__(self, status: int, body: bytes, location: Optional[str],
                 retry_after: Optional[int]) -> None:
        self.status, self.body = status, body
        self.location, self.retry_after = location, retry_after


class Client:
    """The agent API with one token. `urls`: a URL, a comma-separated list
    or a list; `token`: the serialized agent token, or a function giving
    the current one (the Runtime passes its own); `ca_file`: the CA to
    verify servers with (default: the system's); `timeout`: seconds for
    one call to one server. Thread-safe: each call opens its own
    connection."""

    def __init__(self, urls: Union[str, Sequence[str]], token: TokenSource,
                 ca_file: Optional[str] = None, timeout: float = 15.0) -> None:
        self.urls = parse_urls(urls)
        self._origins = {_origin(u) for u in self.urls}
        if not token:
            raise ValueError("no agent token")
        if not callable(token):
            _check_token(token)
        self._token = token
        self.ca_file = ca_file
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._lock = threading.Lock()
        self._open: Set[http.client.HTTPConnection] = set()
        self._closed = False

    def __repr__(self) -> str:
        return "Client(urls=%r, ca_file=%r)" % (self.urls, self.ca_file)

    @property
    def token(self) -> str:
        """The current serialized token."""
        if callable(self._token):
            return _check_token(self._token())
        return self._token

    # --- the agent API -------------------------------------------------

    def check(self, scope: str, resource: str = "") -> CheckResult:
        """POST /v1/check: may the token do `scope` on `resource`? Consumes
        nothing. Raises for a token that is not valid (401)."""
        a = self._call("POST", "/v1/check",
                       {"scope": scope, "resource": resource})
        return CheckResult(a.get("valid") is True, a.get("error"))

    def credential(self, scope: str, resource: str = "") -> Dict[str, Any]:
        """POST /v1/credentials: the CredentialResult ({credentialType,
        credential, expiresAt?}); it holds a secret. Consumes one use of
        each maxUses budget of the scope."""
        return self._call("POST", "/v1/credentials",
                          {"scope": scope, "resource": resource})

    def delegate(self, agent_id: str, requested_scopes: Sequence[str], *,
                 requested_constraints: Optional[Dict[str, Any]] = None,
                 delegatable: Optional[bool] = None,
                 ttl_minutes: Optional[int] = None,
                 inherit_identity: Optional[bool] = None,
                 federation: Optional[Dict[str, Any]] = None,
                 agent_capabilities: Optional[Dict[str, Any]] = None
                 ) -> Dict[str, Any]:
        """POST /v1/tokens/delegate: a narrower child token. Returns
        {token, tokenId, agentId, expiresAt, narrowed}."""
        body: Dict[str, Any] = {"agentId": agent_id,
                                "requestedScopes": list(requested_scopes)}
        for name, value in (("requestedConstraints", requested_constraints),
                            ("delegatable", delegatable),
                            ("ttlMinutes", ttl_minutes),
                            ("inheritIdentity", inherit_identity),
                            ("federation", federation),
                            ("agentCapabilities", agent_capabilities)):
            if value is not None:
                body[name] = value
        return self._call("POST", "/v1/tokens/delegate", body)

    def refresh(self, ttl_minutes: Optional[int] = None) -> Dict[str, Any]:
        """POST /v1/tokens/refresh: {token, tokenId, agentId, expiresAt}.
        A client given a token string uses the new token from then on."""
        body = {} if ttl_minutes is None else {"ttlMinutes": ttl_minutes}
        answer = self._call("POST", "/v1/tokens/refresh", body)
        if isinstance(self._token, str):
            if not sendable(answer.get("token")):
                raise AgentIAMError(200, "bad_answer",
                                    "refresh gave no usable token")
            self._token = answer["token"]
        return answer

    def whoami(self) -> Dict[str, Any]:
        """GET /v1/whoami: the verified token's claims."""
        return self._call("GET", "/v1/whoami", None)

    def close(self) -> None:
        """Abort the calls in flight (from any thread: they raise
        ConnectionFailed) and refuse new ones."""
        with self._lock:
            self._closed = True
            conns = list(self._open)
        for conn in conns:
            if conn.sock is not None:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    # --- transport -----------------------------------------------------

    def _call(self, method: str, path: str,
              body: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        token = self.token
        data = None if body is None else json.dumps(
            body, separators=(",", ":")).encode("utf-8")
        answer = self._send_round(method, path, data, token)
        try:
            parsed = json.loads(answer.body.decode("utf-8")) \
                if answer.body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if 200 <= answer.status < 300:
            if not isinstance(parsed, dict):
                raise AgentIAMError(answer.status, "bad_answer",
                                    "the server's answer is not a JSON object")
            return parsed
        msg = code = None
        if isinstance(parsed, dict):
            msg, code = parsed.get("error"), parsed.get("code")
        if isinstance(msg, str) and token in msg:
            msg = msg.replace(token, "[token]")
        raise error_for(answer.status, code if isinstance(code, str) else None,
                        msg if isinstance(msg, str) else None,
                        answer.retry_after)

    def _send_round(self, method: str, path: str, data: Optional[bytes],
                    token: str) -> _Answer:
        """Go round the URLs (failover), then follow 307s."""
        until = time.monotonic() + FAILOVER_WINDOW_S
        cur, tries, n = 0, 0, len(self.urls)
        answer: Optional[_Answer] = None
        failure: Optional[AgentIAMError] = None
        while True:
            try:
                answer = self._send_following(self.urls[cur], method, path,
                                              data, token)
                if answer.status != 503:
                    return answer
            except _NotSent as e:
                answer, failure = None, e.error
            tries += 1
            if n < 2 or time.monotonic() >= until:
                break
            if tries % n == 0:
                time.sleep(FAILOVER_PAUSE_S)
            cur = (cur + 1) % n
        if answer is not None:
            return answer
        assert failure is not None
        raise failure

    def _send_following(self, base: str, method: str, path: str,
                        data: Optional[bytes], token: str) -> _Answer:
        """One server, then the Locations of its 307s (a voter that is not
        the leader: the same request, on the leader). A Location is
        followed only to one of the configured servers: the token goes to
        no other host."""
        url = base + path
        for hop in range(MAX_REDIRECTS + 1):
            answer = self._send_one(url, method, data, token, first=hop == 0)
            if answer.status != 307:
                return answer
            if not answer.location:
                raise InvalidRequest(307, "not_leader",
                                     "%s is not the leader and named none"
                                     % urlsplit(url).netloc)
            url = urljoin(url, answer.location)
            if _origin(url) not in self._origins:
                raise InvalidRequest(
                    307, "not_leader", "redirect to %s refused: not one of "
                    "the configured servers" % _origin(url))
        raise AgentIAMError(307, "too_many_redirects",
                            "no leader answered after %d redirects"
                            % MAX_REDIRECTS)

    def _send_one(self, url: str, method: str, data: Optional[bytes],
                  token: str, first: bool) -> _Answer:
        p = urlsplit(url)
        where = p.netloc
        target = (p.path or "/") + ("?" + p.query if p.query else "")
        deadline = time.monotonic() + self.timeout
        raw: Optional[socket.socket] = None
        if p.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                p.hostname, p.port, timeout=self.timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(p.hostname, p.port,
                                              timeout=self.timeout)
        with self._lock:
            if self._closed:
                raise ConnectionFailed(0, "connection_failed",
                                       "client closed")
            self._open.add(conn)
        try:
            try:
                conn.connect()
            except (ssl.SSLError, ssl.CertificateError) as e:
                raise ConnectionFailed(0, "connection_failed",
                                       "TLS with %s failed: %s"
                                       % (where, _reason(e))) from None
            except OSError as e:
                # nothing was sent: the next URL may be tried (a redirect's
                # target that cannot be reached ends the call)
                err = self._failure(e, "server %s unreachable" % where)
                if first:
                    raise _NotSent(err) from None
                raise err from None
            with self._lock:  # close() during connect() could not see it
                if self._closed:
                    raise ConnectionFailed(0, "connection_failed",
                                           "client closed")
                raw = conn.sock
                conn.sock = _DeadlineSocket(raw, deadline)
            headers = {"Authorization": "Bearer " + token,
                       "Accept": "application/json",
                       "User-Agent": "agent-iam-python/" + VERSION}
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                body = resp.read(BODY_MAX + 1)
            except (OSError, http.client.HTTPException) as e:
                raise self._failure(e, "call to %s failed" % where) from None
            if len(body) > BODY_MAX:
                raise AgentIAMError(resp.status, "bad_answer",
                                    "answer of %s over %d bytes"
                                    % (where, BODY_MAX))
            return _Answer(resp.status, body, resp.getheader("Location"),
                           _retry_after(resp.getheader("Retry-After")))
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()
            if raw is not None:
                raw.close()

    def _failure(self, e: BaseException, what: str) -> ConnectionFailed:
        if isinstance(e, socket.timeout):
            return ConnectionFailed(0, "timeout", "%s: no answer within %g s"
                                    % (what, self.timeout))
        return ConnectionFailed(0, "connection_failed",
                                "%s: %s" % (what, _reason(e)))


class _DeadlineSocket:
    """A connected socket as http.client uses it, each operation given
    what is left of the try's time: a server that dribbles its answer
    cannot hold a call beyond the timeout."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self._sock.settimeout(left)

    def sendall(self, data: bytes) -> None:
        self._arm()
        self._sock.sendall(data)

    def recv_into(self, buf: Any) -> int:
        self._arm()
        return self._sock.recv_into(buf)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore

    def _decref_socketios(self) -> None:  # SocketIO's close() calls it
        pass

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        pass  # http.client closes before the answer is read: the try does


class _NotSent(Exception):
    def __init__(self, error: AgentIAMError) -> None:
        super().__init__(str(error))
        self.error = error


def _check_token(token: str) -> str:
    if not sendable(token):
        raise InvalidToken(0, "invalid_token", "the agent token holds "
                           "characters that are not visible ASCII (a "
                           "line end?)")
    return token


def _origin(url: str) -> str:
    """scheme://host:port, the port always written."""
    p = urlsplit(url)
    try:
        port = p.port
    except ValueError:
        port = None
    port = port or (443 if p.scheme == "https" else 80)
    host = (p.hostname or "").lower()
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s:%d" % (p.scheme.lower(), host, port)


def _reason(e: BaseException) -> str:
    if isinstance(e, socket.timeout):
        return "timed out"
    return str(e) or type(e).__name__


def _retry_after(value: Optional[str]) -> Optional[int]:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
