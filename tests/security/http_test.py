#!/usr/bin/env python3
"""Hostile HTTP framing and TLS (DESIGN.md §8), against a real leader:

  - both Content-Length and Transfer-Encoding, two Content-Length
    headers: 400 and the connection closed (no request smuggling);
  - a %00 or a raw control byte in the target: 400, and nothing happens
    (`DELETE /v1/admin/apikeys/openai%00x` used to delete `openai`);
  - a method with an escape sequence or CR, or of invalid UTF-8: 400 (not
    500), and the access log never holds the raw bytes;
  - TLS: 1.3 is offered; 1.2 only with ECDHE and AEAD ciphers (CBC and
    SHA-1 suites, and TLS 1.1, refused).

    http_test.py BIN TMPDIR
"""
import os
import socket
import ssl
import sys
import time

import checks
from checks import check
import service as S

S.init(sys.argv[1], sys.argv[2])

ADMIN = "admin-" + os.urandom(12).hex()


def raw_status(L, data):
    if b"Content-Length" not in data and b"Connection" not in data:
        data = data.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    out = S.raw(L, data, read_timeout=3)
    return S.status_line(out), out


def apikeys(L):
    """`apikey list` on the leader's home, and its changelog head."""
    rc, out, err = S.cli("--home", L.home, "apikey", "list")
    r = S.call(L, "GET", "/v1/status", bearer=ADMIN)
    return out, (r.json or {}).get("changelogSeq")


def section_framing(L):
    body = b'{"scope":"openai:chat:completions","resource":""}'
    st, out = raw_status(L, b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: %d\r\nTransfer-Encoding: chunked"
                         b"\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" %
                         (len(body), len(body), body))
    check("Content-Length with Transfer-Encoding: 400", st == 400, out[:200])
    check("... and the connection is closed", b"onnection: close" in out,
          out[:300])
    st, out = raw_status(L, b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
                         b"%s" % (len(body), len(body), body))
    check("two Content-Length headers: 400", st == 400, out[:200])
    st, out = raw_status(L, b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 5\r\nContent-Length: 7\r\n\r\n"
                         b"1234567")
    check("two different Content-Length headers: 400", st == 400, out[:200])
    for te in (b"gzip, chunked", b"identity"):
        st, out = raw_status(L, b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: " + te + b"\r\n\r\n"
                             b"0\r\n\r\n")
        check("Transfer-Encoding: %s: 400" % te.decode(), st == 400,
              out[:200])
    st, out = raw_status(L, b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"
                         b"Transfer-Encoding: chunked\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    check("two Transfer-Encoding headers: 400", st == 400, out[:200])


def section_target(L):
    before = apikeys(L)
    check("the API key openai is there", "openai" in before[0], before)
    st, out = raw_status(L, b"DELETE /v1/admin/apikeys/openai%00x HTTP/1.1"
                         b"\r\nHost: x\r\nAuthorization: Bearer " +
                         ADMIN.encode() + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    check("DELETE /v1/admin/apikeys/openai%00x: 400", st == 400, out[:200])
    check("... and openai is still there", apikeys(L) == before,
          "%r -> %r" % (before, apikeys(L)))
    for target in (b"/healthz%0d%0aX:%20y", b"/v1/status%1b[2J",
                   b"/healthz?x=%00", b"/heal\x01thz"):
        st, out = raw_status(L, b"GET " + target + b" HTTP/1.1\r\nHost: x"
                             b"\r\n\r\n")
        check("a control byte in the target %r: 400" % target, st == 400,
              out[:200])


def section_method(L, access_log):
    for m in (b"\x1b[31mGET", b"GE\rT", b"\xff\xfe", b"G\xc3\xa9T"):
        st, out = raw_status(L, m + b" /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        check("method %r: 400 (not 500)" % m, st == 400, out[:200])
    st, _ = raw_status(L, b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    check("an unknown but well-formed method: 405", st == 405, st)
    r = S.call(L, "GET", "/healthz")  # one more line: the log is flushed
    S.wait_for(lambda: os.path.getsize(access_log) > 0, 3)
    time.sleep(0.3)
    with open(access_log, "rb") as f:
        log = f.read()
    check("the access log holds no ESC, CR or non-ASCII byte",
          not any(c == 0x1b or c == 0x0d or c > 0x7e for c in log),
          [l for l in log.split(b"\n") if any(c == 0x1b or c == 0x0d or
                                              c > 0x7e for c in l)][:3])
    check("the refused requests are logged (method as ?)",
          log.count(b" ? ") >= 4, log[-400:])
    return r


def tls_try(L, version, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(S.CA)
    ctx.minimum_version = version
    ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    s = socket.create_connection(("127.0.0.1", L.port), timeout=5)
    try:
        t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        c = t.cipher()
        t.close()
        return c
    except (ssl.SSLError, OSError):
        s.close()
        return None


def section_tls(L):
    c = tls_try(L, ssl.TLSVersion.TLSv1_3)
    check("TLS 1.3 is offered", c is not None and c[1] == "TLSv1.3", repr(c))
    for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256",
                  "ECDHE-ECDSA-CHACHA20-POLY1305"):
        c = tls_try(L, ssl.TLSVersion.TLSv1_2, suite)
        check("TLS 1.2 with %s" % suite, c is not None and c[0] == suite,
              repr(c))
    for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                  "AES128-SHA", "AES128-GCM-SHA256"):
        c = tls_try(L, ssl.TLSVersion.TLSv1_2, suite + ":@SECLEVEL=0")
        check("TLS 1.2 with %s refused" % suite, c is None, repr(c))


def main():
    admin_file = S.secret_file("admin.token", ADMIN)
    home = S.home("leader")
    rc, out, err = S.cli("--home", home, "apikey", "add", "--name", "openai", "--provider", "openai",
                         "--key-file", S.secret_file("k", "sk-test-1"))
    if rc != 0:
        raise RuntimeError("apikey add: %s" % err)
    L = S.leader("leader", home, "--admin-token-file", admin_file)
    L.home = home
    section_framing(L)
    section_target(L)
    section_method(L, os.path.join(S.TMP, "leader.access"))
    section_tls(L)
    L.stop_checked()
    print("%d passed, %d failed" % (checks.counts["pass"],
                                    checks.counts["fail"]))
    return 1 if checks.counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
