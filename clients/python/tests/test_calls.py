"""Every call of the agent API, on the leader and on the follower."""
import unittest

from agent_iam import CheckResult, Client, decode_claims

from .helpers import (APIKEY_SECRET, BOTH, CA, CHAT, REFRESH, agent_id,
                      root_token)


class CallsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = root_token("calls", [CHAT, REFRESH])

    def client(self, url):
        return Client(url, self.root["token"], ca_file=CA, timeout=10)

    def test_whoami(self):
        for url in BOTH:
            with self.subTest(url=url):
                me = self.client(url).whoami()
                self.assertEqual(me["agentId"], self.root["agentId"])
                self.assertEqual(me["tokenId"], self.root["tokenId"])
                self.assertEqual(me["scopes"], [CHAT, REFRESH])
                self.assertNotIn("signature", me)

    def test_check(self):
        for url in BOTH:
            with self.subTest(url=url):
                c = self.client(url)
                yes = c.check("openai:chat:completions")
                self.assertIsInstance(yes, CheckResult)
                self.assertTrue(yes)
                self.assertIsNone(yes.error)
                no = c.check("openai:images:create", "")
                self.assertFalse(no)
                self.assertIn("openai:images:create", no.error)

    def test_credential(self):
        for url in BOTH:
            with self.subTest(url=url):
                cred = self.client(url).credential("openai:chat:completions")
                self.assertEqual(cred["credentialType"], "api_key")
                self.assertEqual(cred["credential"]["apiKey"], APIKEY_SECRET)

    def test_delegate(self):
        for url in BOTH:
            with self.subTest(url=url):
                kid = agent_id("kid")
                d = self.client(url).delegate(
                    kid, ["openai:chat:completions"], ttl_minutes=5,
                    delegatable=False,
                    requested_constraints={"openai:chat:completions":
                                           {"maxUses": 3}})
                self.assertEqual(d["agentId"], kid)
                self.assertEqual(d["narrowed"], [])
                claims = decode_claims(d["token"])
                self.assertEqual(claims["parentId"], self.root["agentId"])
                self.assertEqual(claims["scopes"], ["openai:chat:completions"])
                self.assertFalse(claims["delegatable"])
                self.assertEqual(claims["constraints"]
                                 ["openai:chat:completions"]["maxUses"], 3)
                child = Client(url, d["token"], ca_file=CA)
                self.assertTrue(child.check("openai:chat:completions"))
                self.assertFalse(child.check("openai:chat:other"))

    def test_delegate_narrowed(self):
        root = root_token("fed", federation={"crossSystemAllowed": False,
                                             "maxHops": 2})
        d = Client(BOTH[0], root["token"], ca_file=CA).delegate(
            agent_id("fed"), [CHAT], federation={"crossSystemAllowed": True})
        self.assertEqual(d["narrowed"], ["federation.crossSystemAllowed"])

    def test_refresh(self):
        for url in BOTH:
            with self.subTest(url=url):
                c = self.client(url)
                old = c.token
                r = c.refresh(ttl_minutes=30)
                self.assertEqual(r["tokenId"], self.root["tokenId"])
                self.assertNotEqual(r["token"], old)
                self.assertEqual(c.token, r["token"])  # the client uses it
                self.assertEqual(c.whoami()["expiresAt"], r["expiresAt"])

    def test_url_list_forms(self):
        for urls in ("%s,%s" % BOTH, " %s , %s/ " % BOTH, list(BOTH)):
            with self.subTest(urls=urls):
                c = Client(urls, self.root["token"], ca_file=CA)
                self.assertEqual(c.urls, list(BOTH))
                self.assertTrue(c.check("openai:chat:x"))

    def test_bad_urls(self):
        for urls in ("", "ftp://h", "http://example.com:80",
                     "https://u:p@127.0.0.1:1", []):
            with self.subTest(urls=urls):
                self.assertRaises(ValueError, Client, urls, "t")


if __name__ == "__main__":
    unittest.main()
