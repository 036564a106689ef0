"""Reading a serialized agent token without verifying it (the client has
no key: the server verifies on every call), as the runtime needs to know
when it expires and whether it may refresh."""
from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from typing import Any, Dict, Optional


_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}\Z")
_VISIBLE = re.compile(r"[\x21-\x7e]+\Z")


def sendable(token: Any) -> bool:
    """Can the token go in an Authorization header (visible ASCII only)?
    The server judges the rest."""
    return isinstance(token, str) and _VISIBLE.match(token) is not None


def decode_claims(token: str) -> Dict[str, Any]:
    """The token's members (base64url JSON); ValueError when it is not a
    serialized agent token. The message never holds the token."""
    try:
        if not _BASE64URL.match(token):
            raise ValueError("not base64url")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        claims = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError, binascii.Error):
        raise ValueError("not a serialized agent token") from None
    if not isinstance(claims, dict):
        raise ValueError("not a serialized agent token")
    return claims


def parse_time(value: Any) -> Optional[float]:
    """An RFC 3339 time (e.g. 2026-11-28T12:00:00.000Z) as seconds since
    the epoch; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


def scope_matches(pattern: str, scope: str) -> bool:
    """DESIGN §2's scope matching: `*` alone matches any scope; a final `*`
    segment one or more remaining segments; another `*` one segment."""
    if pattern == "*":
        return True
    p, s = pattern.split(":"), scope.split(":")
    for i, seg in enumerate(p):
        if seg == "*" and i == len(p) - 1:
            return len(s) > i
        if i >= len(s) or (seg != "*" and seg != s[i]):
            return False
    return len(p) == len(s)


def may_refresh(claims: Dict[str, Any]) -> bool:
    """Does the token hold a scope matching system:token:refresh?"""
    scopes = claims.get("scopes")
    return isinstance(scopes, list) and any(
        isinstance(p, str) and scope_matches(p, "system:token:refresh")
        for p in scopes)
