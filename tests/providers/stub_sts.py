#!/usr/bin/env python3
"""stub_sts.py - a stand-in for AWS STS AssumeRole (Query API), for
tests/providers/test_aws.c. Standard library plus the openssl CLI.

    stub_sts.py DIR ACCESS_KEY_ID SECRET_ACCESS_KEY SESSION_TOKEN

Makes the test PKI in DIR (see stub_github.make_pki), listens with TLS on
127.0.0.1 and prints "PORT <n>" once it accepts connections.

POST [/MODE]/ is checked as STS would: the Signature Version 4
Authorization header is recomputed from the request (canonical request,
string to sign, signing key from SECRET_ACCESS_KEY, service "sts") and a
wrong one is 403 SignatureDoesNotMatch; an unknown access key id is 403
InvalidClientTokenId, as is an X-Amz-Security-Token other than
SESSION_TOKEN or one left out of SignedHeaders. The form must have
Action=AssumeRole, Version=2011-06-15, a role ARN, a RoleSessionName of
[\\w+=,.@-]{2,64} and DurationSeconds 900..43200 (else 400
ValidationError). Every checked form is written to DIR/last.json for the
test to read (the session policy among it). Answers AssumeRoleResponse
XML whose Expiration is X-Amz-Date + DurationSeconds.

MODE: flaky-<id> (first request 500, as stub_github.py), malformed (200
with truncated XML).
"""
import datetime
import hashlib
import hmac
import json
import os
import re
import sys
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stub_github import Quiet, make_pki, serve  # noqa: E402

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/sts/"
    r"aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def error_xml(kind, code, message):
    return ("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/"
            "2011-06-15/\">\n  <Error>\n    <Type>%s</Type>\n"
            "    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n"
            "  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
            "</ErrorResponse>\n" % (kind, code, message)).encode()


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sts_handler(d, akid, secret, token):
    class H(Quiet):
        def xml(self, status, body):
            self.reply(status, body, "text/xml")

        def deny(self, status, code, why):
            sys.stderr.write("stub_sts.py: answered %d %s (%s)\n"
                             % (status, code, why))
            kind = "Sender"
            self.xml(status, error_xml(kind, code, why))

        def check_signature(self, body):
            m = AUTH_RE.match(self.headers.get("Authorization", ""))
            if not m:
                return ("IncompleteSignature", "bad Authorization header")
            key_id, date8, region, signed, sig = m.groups()
            if key_id != akid:
                return ("InvalidClientTokenId", "unknown access key")
            amz_date = self.headers.get("X-Amz-Date", "")
            if not amz_date.startswith(date8):
                return ("IncompleteSignature", "date and scope differ")
            names = signed.split(";")
            if names != sorted(names) or not {"content-type", "host",
                                              "x-amz-date"} <= set(names):
                return ("IncompleteSignature", "signed headers")
            tok = self.headers.get("X-Amz-Security-Token")
            if tok is not None and (tok != token or
                                    "x-amz-security-token" not in names):
                return ("InvalidClientTokenId", "bad session token")
            lines = []
            for n in names:
                vals = self.headers.get_all(n) or []
                if not vals:
                    return ("IncompleteSignature", "missing header " + n)
                vals = [" ".join(v.split()) for v in vals]
                lines.append("%s:%s\n" % (n, ",".join(vals)))
            path = self.path.split("?", 1)[0]
            creq = "\n".join(["POST", path, "", "".join(lines), signed,
                              hashlib.sha256(body).hexdigest()])
            scope = "%s/%s/sts/aws4_request" % (date8, region)
            sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(creq.encode()).hexdigest()])
            k = hmac256(("AWS4" + secret).encode(), date8)
            for part in (region, "sts", "aws4_request"):
                k = hmac256(k, part)
            want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, sig):
                return ("SignatureDoesNotMatch", "signature mismatch")
            return None

        def do_POST(self):
            body = self.body()
            mode, path = self.mode()
            if path != "/":
                return self.deny(404, "NotFound", "path " + path)
            ctype = self.headers.get("Content-Type", "")
            if ctype != "application/x-www-form-urlencoded; charset=utf-8":
                return self.deny(400, "InvalidParameterValue",
                                 "content type " + ctype)
            bad = self.check_signature(body)
            if bad:
                return self.deny(403, bad[0], bad[1])
            try:
                form = urllib.parse.parse_qs(body.decode(), strict_parsing=True,
                                             keep_blank_values=True)
            except ValueError:
                return self.deny(400, "MalformedQueryString", "form")
            if any(len(v) != 1 for v in form.values()):
                return self.deny(400, "ValidationError", "repeated field")
            f = {k: v[0] for k, v in form.items()}
            name = f.get("RoleSessionName", "")
            dur = f.get("DurationSeconds", "")
            if (f.get("Action") != "AssumeRole"
                    or f.get("Version") != "2011-06-15"
                    or not f.get("RoleArn", "").startswith("arn:aws:iam::")
                    or not re.fullmatch(r"[\w+=,.@-]{2,64}", name, re.ASCII)
                    or not re.fullmatch(r"[0-9]{3,5}", dur)
                    or not 900 <= int(dur) <= 43200):
                return self.deny(400, "ValidationError", "form fields")
            if "Policy" in f:
                try:
                    json.loads(f["Policy"])
                except ValueError:
                    return self.deny(400, "MalformedPolicyDocument", "policy")
            tmp = os.path.join(d, "last.json.tmp")
            with open(tmp, "w") as out:
                json.dump(f, out)
            os.replace(tmp, os.path.join(d, "last.json"))
            if self.failure(mode):
                return
            if mode == "malformed":
                return self.xml(200, b"<AssumeRoleResponse><AssumeRoleResult>"
                                     b"<Credentials><AccessKeyId>ASIA")
            t = datetime.datetime.strptime(self.headers["X-Amz-Date"],
                                           "%Y%m%dT%H%M%SZ")
            exp = t + datetime.timedelta(seconds=int(dur))
            self.xml(200, (
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/"
                "2011-06-15/\">\n  <AssumeRoleResult>\n"
                "    <SourceIdentity>x</SourceIdentity>\n"
                "    <AssumedRoleUser>\n"
                "      <Arn>%s/%s</Arn>\n"
                "      <AssumedRoleId>ARO123EXAMPLE123:%s</AssumedRoleId>\n"
                "    </AssumedRoleUser>\n    <Credentials>\n"
                "      <AccessKeyId>ASIATESTKEY0000001</AccessKeyId>\n"
                "      <SecretAccessKey>tmp/Secret+Key&amp;1</SecretAccessKey>\n"
                "      <SessionToken>FwoGZXIvYXdzEXAMPLE//token=</SessionToken>\n"
                "      <Expiration>%s</Expiration>\n"
                "    </Credentials>\n"
                "    <PackedPolicySize>6</PackedPolicySize>\n"
                "  </AssumeRoleResult>\n  <ResponseMetadata>\n"
                "    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
                "  </ResponseMetadata>\n</AssumeRoleResponse>\n"
                % (f["RoleArn"], name, name,
                   exp.strftime("%Y-%m-%dT%H:%M:%SZ"))).encode())
    return H


def main():
    d, akid, secret, token = sys.argv[1:5]
    make_pki(d)
    serve(d, sts_handler(d, akid, secret, token))


if __name__ == "__main__":
    main()
