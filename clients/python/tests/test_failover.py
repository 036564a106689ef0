"""A list of URLs: a dead entry or a 503 gives way to the next URL, a 307
is followed, and a request that may have arrived is never sent again.
The 503, the 307 and the dropped request come from small plain-http
stubs on 127.0.0.1 put in front of the real leader, which answers."""
import http.client
import time
import unittest
from unittest import mock

import agent_iam as A

from .helpers import CA, CHAT, DEAD, FOLLOWER, LEADER, root_token
from .stubs import Stub, answer, drop


class FailoverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = root_token("failover", [CHAT])

    def stub(self, reply):
        s = Stub(reply)
        self.addCleanup(s.close)
        return s

    def test_dead_first_entry(self):
        for urls in ([DEAD, LEADER], "%s,%s" % (DEAD, FOLLOWER)):
            with self.subTest(urls=urls):
                c = A.Client(urls, self.root["token"], ca_file=CA)
                self.assertEqual(c.whoami()["agentId"], self.root["agentId"])
                cred = c.credential("openai:chat:completions")
                self.assertEqual(cred["credentialType"], "api_key")

    def test_all_dead_is_bounded(self):
        c = A.Client([DEAD, DEAD], self.root["token"], ca_file=CA)
        t0 = time.monotonic()
        with self.assertRaises(A.ConnectionFailed):
            c.whoami()
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 3.5)  # it kept trying for 4 s
        self.assertLess(took, 8)

    def test_503_gives_way(self):
        s = self.stub(answer(503, [("Retry-After", "1")]))
        c = A.Client([s.url, LEADER], self.root["token"], ca_file=CA)
        self.assertEqual(c.credential("openai:chat:x")["credentialType"],
                         "api_key")
        self.assertEqual(s.count, 1)

    def test_503_alone_is_unavailable(self):
        s = self.stub(answer(503, [("Retry-After", "2")]))
        with self.assertRaises(A.Unavailable) as cm:
            A.Client(s.url, self.root["token"]).check(CHAT)
        self.assertEqual((cm.exception.code, cm.exception.retry_after),
                         ("unavailable", 2))

    def test_307_followed(self):
        s = self.stub(lambda h: answer(307, [("Location", LEADER + h.path)],
                                       b'{"error":"not the leader",'
                                       b'"code":"not_leader"}')(h))
        c = A.Client([s.url, LEADER], self.root["token"], ca_file=CA)
        self.assertEqual(c.credential("openai:chat:x")["credentialType"],
                         "api_key")
        self.assertEqual(c.whoami()["agentId"], self.root["agentId"])
        self.assertEqual(s.count, 2)

    def test_307_loop_ends(self):
        s = self.stub(lambda h: answer(307, [("Location", "http://" +
                                              h.headers["Host"] + h.path)])(h))
        with self.assertRaises(A.AgentIAMError) as cm:
            A.Client(s.url, self.root["token"]).whoami()
        self.assertEqual(cm.exception.code, "too_many_redirects")
        self.assertEqual(s.count, 4)

    def test_307_relative_location(self):
        """A relative Location is resolved against the URL it came from."""
        s = self.stub(answer(307, [("Location", "/v1/whoami")]))
        with self.assertRaises(A.AgentIAMError) as cm:
            A.Client(s.url, "tok").whoami()
        self.assertEqual(cm.exception.code, "too_many_redirects")
        self.assertEqual(s.count, 4)

    def test_307_without_location(self):
        s = self.stub(answer(307))
        with self.assertRaises(A.AgentIAMError) as cm:
            A.Client(s.url, "tok").whoami()
        self.assertEqual((cm.exception.status, cm.exception.code),
                         (307, "not_leader"))
        self.assertEqual(s.count, 1)

    def test_307_to_another_server_refused(self):
        """The token goes only to the configured servers: a Location on
        another host or port (https or http) gets nothing."""
        other = self.stub(answer(200, body=b"{}"))
        port = other.url.rsplit(":", 1)[1]
        for where in ("https://127.0.0.1:" + port, other.url,
                      "https://leader.example:8443"):
            with self.subTest(where=where):
                s = self.stub(answer(307, [("Location", where + "/v1/x")]))
                with self.assertRaises(A.AgentIAMError) as cm:
                    A.Client(s.url, "secret-tok").whoami()
                e = cm.exception
                self.assertEqual((e.status, e.code), (307, "not_leader"))
                self.assertIn(where, e.message)
                self.assertNotIn("secret-tok", str(e) + repr(e))
        self.assertEqual(other.count, 0)

    def test_307_to_plain_http_elsewhere_refused(self):
        s = self.stub(answer(307, [("Location", "http://example.com/x")]))
        with self.assertRaises(A.AgentIAMError) as cm:
            A.Client(s.url, self.root["token"]).whoami()
        self.assertEqual(cm.exception.status, 307)

    def test_timeout_bounds_the_whole_try(self):
        """A server that sends a byte every 0.3 s cannot hold a call with
        timeout 1 s much beyond 1 s; the error's code is timeout."""
        def dribble(h):
            h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(30):  # 9 s at most
                if s.release.wait(0.3):
                    return
                try:
                    h.wfile.write(b"a")
                except OSError:
                    return
        s = self.stub(dribble)
        c = A.Client(s.url, "tok", timeout=1)
        t0 = time.monotonic()
        with self.assertRaises(A.ConnectionFailed) as cm:
            c.whoami()
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertEqual(cm.exception.code, "timeout")

    def test_close_during_connect_sends_nothing(self):
        """close() while a call is still connecting: the request is not
        sent once the connection is made."""
        s = self.stub(answer(200, body=b"{}"))
        c = A.Client(s.url, "tok")
        connect = http.client.HTTPConnection.connect

        def closing_connect(conn):
            c.close()
            connect(conn)

        with mock.patch.object(http.client.HTTPConnection, "connect",
                               closing_connect):
            with self.assertRaises(A.ConnectionFailed):
                c.whoami()
        time.sleep(0.2)
        self.assertEqual(s.count, 0)

    def test_arrived_request_not_resent(self):
        """A credential request to a server that dropped it is not sent to
        the next URL: with maxUses 1, the one use is still there after."""
        root = root_token("once", [CHAT],
                          constraints={CHAT: {"maxUses": 1}})
        s = self.stub(drop)
        c = A.Client([s.url, LEADER], root["token"], ca_file=CA)
        with self.assertRaises(A.ConnectionFailed):
            c.credential("openai:chat:completions")
        self.assertEqual(s.count, 1)
        leader = A.Client(LEADER, root["token"], ca_file=CA)
        self.assertEqual(leader.credential("openai:chat:completions")
                         ["credentialType"], "api_key")
        with self.assertRaises(A.Forbidden):  # the budget is spent now
            leader.credential("openai:chat:completions")


if __name__ == "__main__":
    unittest.main()
