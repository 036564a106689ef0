"""`pip install clients/python` works offline, in a venv made with
--system-site-packages, and the installed package calls the server."""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

from .helpers import CA, CHAT, LEADER, TMP, TOP, root_token

# setuptools builds a wheel with its own bdist_wheel from 70.1 on, else
# with the `wheel` package (Debian's python3-wheel, which python3-pip
# brings): the first interpreter that has what it needs
CAN_BUILD = ("import setuptools, sys\n"
             "v = tuple(int(x) for x in setuptools.__version__.split('.')[:2])\n"
             "if v < (70, 1): import wheel\n")


def builder():
    for py in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(py) and subprocess.run(
                [py, "-c", CAN_BUILD], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, timeout=30).returncode == 0:
            return py
    return None


class InstallTest(unittest.TestCase):
    def test_pip_install_offline(self):
        py = builder()
        self.assertIsNotNone(py, "no python3 with setuptools and wheel "
                             "(scripts/install-deps.sh installs python3-pip)")
        work = tempfile.mkdtemp(prefix="py-install-", dir=TMP)
        self.addCleanup(shutil.rmtree, work, True)
        src = os.path.join(work, "src")  # a copy: pip builds in the tree
        shutil.copytree(os.path.join(TOP, "clients", "python"), src,
                        ignore=shutil.ignore_patterns("tests", "__pycache__",
                                                      "build", "*.egg-info"))
        venv = os.path.join(work, "venv")
        run = lambda *cmd: subprocess.run(  # noqa: E731
            cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=120)
        p = run(py, "-m", "venv", "--system-site-packages", venv)
        self.assertEqual(p.returncode, 0, p.stdout)
        vpy = os.path.join(venv, "bin", "python")
        p = run(vpy, "-m", "pip", "install", "--no-index",
                "--no-build-isolation", "--disable-pip-version-check", src)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:])
        root = root_token("install", [CHAT])
        script = textwrap.dedent("""
            import sys, agent_iam
            assert agent_iam.__file__.startswith(sys.prefix), agent_iam.__file__
            c = agent_iam.Client(sys.argv[1], sys.argv[2], ca_file=sys.argv[3])
            print(c.whoami()["agentId"])
            print(c.credential("openai:chat:completions")["credentialType"])
            """)
        p = run(vpy, "-c", script, LEADER, root["token"], CA)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:])
        self.assertEqual(p.stdout.split(), [root["agentId"], "api_key"])


if __name__ == "__main__":
    unittest.main()
