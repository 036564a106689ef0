"""examples/python/agent.py: the agent gets a credential and runs a
sub-agent with a narrower token, which may use its scope and is refused
the parent's other one."""
import os
import subprocess
import sys
import unittest

from .helpers import CA, CHAT, DEAD, FOLLOWER, LEADER, TOP, root_token


class ExampleTest(unittest.TestCase):
    def test_agent_and_sub_agent(self):
        root = root_token("example", [CHAT])
        env = dict(os.environ, AGENT_TOKEN=root["token"],
                   AGENT_IAM_URL="%s,%s,%s" % (DEAD, LEADER, FOLLOWER),
                   AGENT_IAM_CA_CERT=CA)
        env.pop("PYTHONPATH", None)  # it finds agent_iam in the tree itself
        p = subprocess.run(
            [sys.executable, os.path.join(TOP, "examples", "python",
                                          "agent.py")],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=90)
        out = p.stdout
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("parent: credential openai:chat:completions", out)
        self.assertRegex(out, r"child: I am %s-sub \(parent %s\)"
                         % (root["agentId"], root["agentId"]))
        self.assertRegex(out, r"child: credential openai:chat:completions +"
                         r"allowed \(api_key\)")
        self.assertRegex(out, r"child: credential openai:chat:moderations +"
                         r"refused \(forbidden")
        self.assertIn("parent: the sub-agent exited 0", out)
        self.assertNotIn(root["token"], out)
        self.assertNotIn(os.environ["AGENT_IAM_TEST_APIKEY_SECRET"], out)


if __name__ == "__main__":
    unittest.main()
