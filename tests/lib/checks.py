"""checks.py - what the integration test drivers (tests/server,
tests/follower) share: "ok NAME" / "FAIL NAME (why)" lines with their
counts, the sanitizer report finder, and token decoding."""
import base64
import json

counts = {"pass": 0, "fail": 0}


def ok(name):
    counts["pass"] += 1
    print("ok   " + name, flush=True)


def no(name, why=""):
    counts["fail"] += 1
    print("FAIL %s%s" % (name, " (%s)" % why if why else ""), flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        no(name, why)
    return bool(cond)


def sanitizer_report(text):
    """The part of a process's stderr that reports a sanitizer finding, or
    None."""
    for pat in ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                "UndefinedBehaviorSanitizer"):
        if pat in text:
            i = text.index(pat)
            return text[max(0, i - 200):i + 600]
    return None


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def token_json(token):
    """A serialized token's JSON (not verified)."""
    return json.loads(b64d(token))
