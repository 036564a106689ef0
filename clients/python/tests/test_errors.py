"""Every error of the agent API a client can provoke, as the server
really answers it, on the leader and on the follower; no token in any
error's text."""
import base64
import json
import threading
import time
import unittest

import agent_iam as A

from .helpers import (BOTH, CA, CHAT, REFRESH, agent_id, revoke_agent,
                      root_token)


def forge(token):
    """The token with its scopes widened and its signature kept."""
    claims = A.decode_claims(token)
    claims["scopes"] = ["*"]
    raw = json.dumps(claims, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class ErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = root_token("errors", [CHAT, "github:repo:read"])

    def assertRaisesCode(self, cls, status, code, call):
        with self.assertRaises(cls) as cm:
            call()
        e = cm.exception
        self.assertIsInstance(e, A.AgentIAMError)
        self.assertEqual((e.status, e.code), (status, code))
        self.assertTrue(e.message)
        return e

    def each(self, token=None):
        for url in BOTH:
            with self.subTest(url=url):
                yield A.Client(url, token or self.root["token"], ca_file=CA)

    def test_invalid_token_garbled(self):
        for c in self.each("not-a-token!"):
            self.assertRaisesCode(A.InvalidToken, 401, "invalid_token",
                                  c.whoami)

    def test_invalid_token_forged(self):
        forged = forge(self.root["token"])
        for c in self.each(forged):
            e = self.assertRaisesCode(A.InvalidToken, 401, "invalid_token",
                                      lambda: c.check(CHAT))
            self.assertIsInstance(e, A.Unauthorized)
            self.assertNotIn(forged, str(e) + repr(e))

    def test_token_revoked(self):
        root = root_token("revoked", [CHAT])
        kid = A.Client(BOTH[0], root["token"], ca_file=CA).delegate(
            agent_id("revoked-kid"), [CHAT])
        revoke_agent(root["agentId"])
        deadline = time.monotonic() + 10  # the follower learns it by its feed
        for tok in (root["token"], kid["token"]):
            for c in self.each(tok):
                while True:
                    try:
                        c.whoami()
                    except A.TokenRevoked as e:
                        self.assertEqual((e.status, e.code),
                                         (401, "token_revoked"))
                        self.assertNotIn(tok, str(e) + repr(e))
                        break
                    self.assertLess(time.monotonic(), deadline,
                                    "not revoked on %s" % c.urls)
                    time.sleep(0.1)
                self.assertRaises(A.TokenRevoked, c.credential, CHAT)

    def test_forbidden(self):
        for c in self.each():
            self.assertRaisesCode(A.Forbidden, 403, "forbidden",
                                  lambda: c.credential("openai:images:create"))
            e = self.assertRaisesCode(
                A.Forbidden, 403, "forbidden",
                lambda: c.delegate(agent_id("wide"), ["openai:*"]))
            self.assertIn("openai:*", e.message)
            # a root token without system:token:refresh may not refresh
            self.assertRaisesCode(A.Forbidden, 403, "forbidden", c.refresh)

    def test_bad_request(self):
        for c in self.each():
            self.assertRaisesCode(A.BadRequest, 400, "bad_request",
                                  lambda: c.delegate(agent_id("none"), []))
            self.assertRaisesCode(
                A.BadRequest, 400, "bad_request",
                lambda: c.delegate(agent_id("ttl"), [CHAT], ttl_minutes=0))

    def test_not_found_provider(self):
        for c in self.each():
            e = self.assertRaisesCode(
                A.NotFound, 404, "not_found",
                lambda: c.credential("github:repo:read", "org/repo"))
            self.assertIn("github", e.message)

    def test_payload_too_large(self):
        for c in self.each():
            self.assertRaisesCode(
                A.PayloadTooLarge, 413, "payload_too_large",
                lambda: c.delegate(agent_id("big"), ["a:b:" + "c" * 70000]))

    def test_rate_limited(self):
        """An agent's writes over its rate (burst 100, 50/s): 429 with
        Retry-After. Refreshes of a root of this test's own, from 8
        threads so that a slow (sanitized) server is outrun too."""
        root = root_token("rate", [CHAT, REFRESH])
        c = A.Client(BOTH[0], root["token"], ca_file=CA)
        deadline = time.monotonic() + 30
        seen, done = [], threading.Event()

        def hammer():
            try:
                while not done.is_set() and time.monotonic() < deadline:
                    c.refresh(ttl_minutes=60)
            except A.AgentIAMError as e:
                seen.append(e)
                done.set()

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertTrue(seen, "no 429 within 30 s")
        e = seen[0]
        self.assertIsInstance(e, A.RateLimited)
        self.assertEqual((e.status, e.code), (429, "rate_limited"))
        self.assertGreaterEqual(e.retry_after, 1)
        self.assertIn("too many writes", e.message)

    def test_token_with_a_line_end(self):
        """A token that a header cannot carry is refused before any call,
        and the error does not hold it."""
        tok = self.root["token"]
        for bad in (tok + "\n", tok + "\r\n", tok + " x"):
            with self.subTest(bad=bad[-3:]):
                with self.assertRaises(A.AgentIAMError) as cm:
                    A.Client(BOTH[0], bad, ca_file=CA).whoami()
                c = A.Client(BOTH[0], lambda: bad, ca_file=CA)
                with self.assertRaises(A.InvalidToken) as cm2:
                    c.whoami()
                for e in (cm.exception, cm2.exception):
                    self.assertEqual(e.code, "invalid_token")
                    self.assertNotIn(tok, str(e) + repr(e))
                with self.assertRaises(ValueError) as cm3:
                    A.Runtime(bad, urls=BOTH[0], ca_file=CA)
                self.assertNotIn(tok, str(cm3.exception))

    def test_connection_failed(self):
        from .helpers import DEAD
        c = A.Client(DEAD, self.root["token"], ca_file=CA, timeout=5)
        e = self.assertRaisesCode(A.ConnectionFailed, 0, "connection_failed",
                                  c.whoami)
        self.assertNotIn(self.root["token"], str(e) + repr(e) + repr(c))

    def test_tls_needs_the_ca(self):
        c = A.Client(BOTH[0], self.root["token"], ca_file=None, timeout=5)
        self.assertRaises(A.ConnectionFailed, c.whoami)


class ErrorMappingTest(unittest.TestCase):
    """The class and code of answers the tests cannot provoke here."""

    def test_by_code_and_status(self):
        from agent_iam.errors import error_for
        for status, code, cls, want in (
                (405, "method_not_allowed", A.InvalidRequest, None),
                (409, "not_leader", A.InvalidRequest, None),
                (410, "gone", A.InvalidRequest, None),
                (405, None, A.InvalidRequest, "method_not_allowed"),
                (418, None, A.InvalidRequest, "internal_error"),
                (502, "bad_gateway", A.ServerError, None),
                (502, "provider_error", A.ProviderError, None),
                (500, None, A.ServerError, "internal_error"),
                (400, None, A.BadRequest, "bad_request")):
            with self.subTest(status=status, code=code):
                e = error_for(status, code, None)
                self.assertIs(type(e), cls)
                self.assertEqual((e.status, e.code), (status, want or code))
        self.assertNotIsInstance(error_for(502, "bad_gateway", None),
                                 A.ProviderError)
        self.assertIsInstance(error_for(404, None, None), A.InvalidRequest)


if __name__ == "__main__":
    unittest.main()
