"""What the suites share: the fixture's servers (tests/clients/fixture.py
sets the environment) and root tokens made with its admin API."""
from __future__ import annotations

import json
import os
import ssl
import urllib.request
import uuid
from typing import Any, Dict, List, Optional

LEADER = os.environ["AGENT_IAM_TEST_LEADER"]
FOLLOWER = os.environ["AGENT_IAM_TEST_FOLLOWER"]
DEAD = os.environ["AGENT_IAM_TEST_DEAD"]
CA = os.environ["AGENT_IAM_TEST_CA"]
ADMIN = os.environ["AGENT_IAM_TEST_ADMIN_TOKEN"]
APIKEY = os.environ["AGENT_IAM_TEST_APIKEY"]
APIKEY_SECRET = os.environ["AGENT_IAM_TEST_APIKEY_SECRET"]
TMP = os.environ["AGENT_IAM_TEST_TMP"]
TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                   ".."))
CHAT = "openai:chat:*"          # the API key's scope
REFRESH = "system:token:refresh"
BOTH = (LEADER, FOLLOWER)


def agent_id(what: str) -> str:
    """An agent id of this suite's own (other suites share the servers)."""
    return "py-%s-%s" % (what, uuid.uuid4().hex[:10])


def admin(path: str, body: Dict[str, Any]) -> Dict[str, Any]:
    req = urllib.request.Request(
        LEADER + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + ADMIN,
                 "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=CA)
    with urllib.request.urlopen(req, context=ctx, timeout=15) as r:
        return json.loads(r.read())


def root_token(what: str, scopes: Optional[List[str]] = None,
               **extra: Any) -> Dict[str, Any]:
    """A root token ({token, tokenId, agentId, expiresAt}) for a new agent
    id, with the API key's scope by default."""
    body = {"agentId": agent_id(what), "scopes": scopes or [CHAT],
            "ttlDays": 1}
    body.update(extra)
    return admin("/v1/admin/tokens", body)


def revoke_agent(agent: str) -> Dict[str, Any]:
    return admin("/v1/admin/revoke", {"agentId": agent,
                                      "reason": "python client test"})
