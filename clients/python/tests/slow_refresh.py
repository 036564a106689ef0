"""The slow test, run by tests/clients/run.sh beside the others: a
Runtime given a delegated token of 1 minute keeps it alive past its first
expiry by refreshing it in the background, while the token it was given
expires (401 token_expired)."""
import threading
import time
import unittest

import agent_iam as A

from .helpers import CA, CHAT, FOLLOWER, LEADER, REFRESH, agent_id, root_token


class RefreshBeforeExpiryTest(unittest.TestCase):
    def test_outlives_first_expiry(self):
        root = root_token("slow", [CHAT, REFRESH])
        first = A.Client(LEADER, root["token"], ca_file=CA).delegate(
            agent_id("slow-kid"), [CHAT, REFRESH], ttl_minutes=1)
        first_exp = A.token.parse_time(first["expiresAt"])
        refreshed, errors = [], []
        lock = threading.Lock()

        def on_refresh(token):
            with lock:
                refreshed.append(token)

        # each refresh asks for 1 minute again: the runtime refreshes at
        # start (under refresh_before), then at half of each new life
        with A.Runtime(first["token"], [LEADER, FOLLOWER], CA,
                       refresh_ttl_minutes=1, on_refresh=on_refresh,
                       on_error=errors.append) as rt:
            end = first_exp + 10
            while time.time() < end:
                time.sleep(min(1.0, max(end - time.time(), 0)))
                self.assertTrue(rt.running, rt.status())
            self.assertGreater(time.time(), first_exp)
            self.assertEqual(errors, [])
            self.assertGreaterEqual(len(refreshed), 2, rt.status())
            self.assertEqual(rt.claims["tokenId"], first["tokenId"])
            self.assertGreater(rt.expires_at, time.time())
            for url in (LEADER, FOLLOWER):
                c = A.Client(url, rt.token, ca_file=CA)
                self.assertEqual(c.whoami()["agentId"], first["agentId"])
                self.assertEqual(c.credential("openai:chat:completions")
                                 ["credentialType"], "api_key")
                old = A.Client(url, first["token"], ca_file=CA)
                with self.assertRaises(A.TokenExpired) as cm:
                    old.whoami()
                self.assertEqual((cm.exception.status, cm.exception.code),
                                 (401, "token_expired"))
        self.assertFalse(rt.running)


if __name__ == "__main__":
    unittest.main()
