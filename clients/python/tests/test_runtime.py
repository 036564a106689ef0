"""Runtime (AgentRuntime): the token from the environment, refresh and its
callback, the background refresher, subprocess environments, and a
revocation seen as an error."""
import os
import threading
import time
import unittest
from unittest import mock

import agent_iam as A

from .helpers import (CA, CHAT, DEAD, FOLLOWER, LEADER, REFRESH, agent_id,
                      revoke_agent, root_token)
from .stubs import Stub, answer


def runtime(token, **kw):
    kw.setdefault("urls", [LEADER, FOLLOWER])
    return A.Runtime(token, ca_file=CA, **kw)


def short_token(what):
    """A 2-minute child token with the refresh scope, of a root of its
    own: within refresh_before of its expiry, so a runtime refreshes it at
    start."""
    root = root_token(what, [CHAT, REFRESH])
    return runtime(root["token"]).delegate(agent_id(what + "-kid"),
                                           [CHAT, REFRESH], ttl_minutes=2)


def errors_until(n):
    """(the errors seen, an event set at the n-th, an on_error for them)."""
    errors, done = [], threading.Event()

    def on_error(e):
        errors.append(e)
        if len(errors) >= n:
            done.set()
    return errors, done, on_error


class RuntimeTest(unittest.TestCase):
    def test_from_environment(self):
        root = root_token("env", [CHAT])
        env = {"AGENT_TOKEN": root["token"],
               "AGENT_IAM_URL": "%s,%s" % (DEAD, FOLLOWER),
               "AGENT_IAM_CA_CERT": CA}
        with mock.patch.dict(os.environ, env):
            rt = A.Runtime.from_environment()
        self.assertEqual(rt.client.urls, [DEAD, FOLLOWER])
        self.assertEqual(rt.agent_id, root["agentId"])
        self.assertEqual(rt.whoami()["tokenId"], root["tokenId"])
        self.assertTrue(rt.check("openai:chat:completions"))
        self.assertEqual(rt.credential("openai:chat:x")["credentialType"],
                         "api_key")
        self.assertNotIn(root["token"], repr(rt) + repr(rt.client))

    def test_from_environment_needs_a_token(self):
        with mock.patch.dict(os.environ, {"AGENT_IAM_URL": LEADER}):
            os.environ.pop("AGENT_TOKEN", None)
            self.assertRaises(ValueError, A.Runtime.from_environment)
        self.assertRaises(ValueError, A.Runtime, "%%%", urls=LEADER)

    def test_refresh_now(self):
        root = root_token("refresh", [CHAT, REFRESH])
        seen = []
        rt = runtime(root["token"], on_refresh=seen.append)
        new = rt.refresh(ttl_minutes=20)
        self.assertEqual(seen, [new])
        self.assertEqual(rt.token, new)
        self.assertEqual(rt.claims["tokenId"], root["tokenId"])
        self.assertEqual(rt.whoami()["expiresAt"], rt.claims["expiresAt"])
        self.assertEqual(rt.status()["refreshes"], 1)

    def test_background_refresh_and_stop(self):
        """A token within refresh_before of its expiry is refreshed at
        start; stop() joins the thread; a context manager stops it."""
        kid = short_token("bg")
        done = threading.Event()
        with runtime(kid["token"], refresh_ttl_minutes=30,
                     on_refresh=lambda t: done.set()) as rt:
            self.assertTrue(rt.running)
            self.assertTrue(done.wait(10), rt.status())
            self.assertNotEqual(rt.token, kid["token"])
            self.assertGreater(rt.expires_at,
                               A.token.parse_time(kid["expiresAt"]))
            self.assertTrue(rt.check("openai:chat:x"))
        self.assertFalse(rt.running)
        self.assertIsNone(rt._thread)

    def test_stop_aborts_a_call_in_flight(self):
        """stop() ends a refresh that a server holds, at once, and no
        callback runs after it."""
        kid = short_token("abort")
        stub = Stub(lambda h: stub.release.wait(30))
        self.addCleanup(stub.close)
        called = []
        rt = A.Runtime(kid["token"], stub.url, timeout=30,
                       on_refresh=called.append, on_error=called.append)
        rt.start()
        deadline = time.monotonic() + 10
        while stub.count == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(stub.count, 1)  # the refresh is in flight
        t0 = time.monotonic()
        rt.stop()
        self.assertLess(time.monotonic() - t0, 2)
        self.assertFalse(rt.running)
        self.assertEqual(called, [])
        self.assertEqual(rt.token, kid["token"])

    def test_refresh_answer_that_does_not_decode(self):
        """A refresh answered 200 with a token that is not one: on_error
        hears of it, the thread goes on (and retries), the token stays."""
        kid = short_token("garbage")
        stub = Stub(answer(200, body=b'{"token":"%%%not-a-token"}'))
        self.addCleanup(stub.close)
        errors, twice, on_error = errors_until(2)
        with A.Runtime(kid["token"], stub.url, retry_min=0.1,
                       on_error=on_error) as rt:
            self.assertTrue(twice.wait(10), rt.status())
            self.assertTrue(rt.running)
        self.assertIsInstance(errors[0], A.AgentIAMError)
        self.assertEqual(errors[0].code, "bad_answer")
        self.assertEqual(rt.token, kid["token"])

    def test_refresher_survives_any_exception(self):
        """Not only an AgentIAMError: on_error hears of anything else
        a refresh raises, and the thread goes on."""
        kid = short_token("anyexc")
        errors, twice, on_error = errors_until(2)
        rt = runtime(kid["token"], retry_min=0.1, on_error=on_error)
        with mock.patch.object(A.Client, "refresh",
                               side_effect=KeyError("boom")):
            with rt:
                self.assertTrue(twice.wait(10), rt.status())
                self.assertTrue(rt.running)
        self.assertIsInstance(errors[0], A.AgentIAMError)
        self.assertEqual(errors[0].code, "bad_answer")
        self.assertIn("KeyError", errors[0].message)

    def test_gives_up_at_max_expiry(self):
        """A root token's expiresAt is its maxExpiresAt: due for a refresh
        (refresh_before longer than its life), it cannot be extended, which
        is reported once, and the thread ends."""
        root = root_token("maxexp", [CHAT, REFRESH])
        errors = []
        rt = runtime(root["token"], refresh_before=2 * 86400,
                     on_error=errors.append).start()
        rt._thread.join(10)
        self.assertFalse(rt.running)
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], A.Forbidden)
        self.assertIn("maxExpiresAt", errors[0].message)
        self.assertEqual(rt.token, root["token"])
        rt.stop()

    def test_no_refresh_scope_no_thread(self):
        rt = runtime(root_token("noscope", [CHAT])["token"]).start()
        self.assertFalse(rt.running)
        rt.stop()

    def test_subprocess_env(self):
        root = root_token("sub", [CHAT])
        rt = runtime(root["token"])
        kid = agent_id("sub-kid")
        env = rt.subprocess_env(kid, ["openai:chat:completions"],
                                ttl_minutes=5)
        self.assertEqual(set(env), {"AGENT_TOKEN", "AGENT_IAM_URL",
                                    "AGENT_IAM_CA_CERT"})
        self.assertEqual(env["AGENT_IAM_URL"], "%s,%s" % (LEADER, FOLLOWER))
        self.assertEqual(env["AGENT_IAM_CA_CERT"], CA)
        with mock.patch.dict(os.environ, env):
            child = A.Runtime.from_environment()
        self.assertEqual(child.whoami()["agentId"], kid)
        self.assertEqual(child.claims["parentId"], root["agentId"])
        self.assertTrue(child.check("openai:chat:completions"))
        self.assertFalse(child.check("openai:chat:other"))
        self.assertRaises(A.Forbidden, child.credential, "openai:chat:other")

    def test_revocation_is_an_error(self):
        """After the agent is revoked, calls raise TokenRevoked and the
        background refresher reports it to on_error (and retries)."""
        root = root_token("rtrev", [CHAT, REFRESH])
        rt0 = runtime(root["token"], urls=LEADER)
        kid = rt0.delegate(agent_id("rtrev-kid"), [CHAT, REFRESH],
                           ttl_minutes=2)
        errors = []
        failed = threading.Event()

        def on_error(e):
            errors.append(e)
            failed.set()

        revoke_agent(root["agentId"])
        with runtime(kid["token"], urls=LEADER, retry_min=0.2,
                     on_error=on_error) as rt:
            self.assertTrue(failed.wait(10))
            self.assertRaises(A.TokenRevoked, rt.check, CHAT)
            self.assertRaises(A.TokenRevoked, rt.refresh)
            self.assertRaises(A.TokenRevoked, rt.credential, CHAT)
        self.assertIsInstance(errors[0], A.TokenRevoked)
        self.assertEqual(rt.token, kid["token"])  # unchanged on error
        st = rt.status()
        self.assertGreaterEqual(st["refreshFailures"], 1)
        self.assertIn("token_revoked", st["lastError"])
        self.assertNotIn(kid["token"], st["lastError"])


if __name__ == "__main__":
    unittest.main()
