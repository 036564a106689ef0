#!/usr/bin/env python3
"""/metrics by the Prometheus text exposition rules (issue 12, 3), on a
real leader and a real follower over TLS after a mixed workload on each:
checks good and bad, GET /v1/check (405), delegations, whoami, admin PUT
and DELETE of a provider (two routes of one name), a route that does not
exist, a method nobody knows. The whole output of each is parsed:

  - every line is a comment (# HELP / # TYPE / other) or a sample
    `name{label="value",...} value`; names and label names valid, label
    values escaped (only \\\\, \\" and \\n), the value a float;
  - HELP and TYPE at most once per family, before its first sample, and
    the samples of a family together;
  - no two samples with the same name and label set;
  - a histogram's buckets per series cumulative (never decreasing, le
    increasing), ending with le="+Inf" equal to its _count, with _sum;
  - GET /v1/check counted under route="/v1/check", method="GET", 405
    (not "unmatched"), and PUT and DELETE of /v1/admin/providers/{name}
    as two series told apart by method.

    metrics_test.py BIN TMPDIR
"""
import os
import sys

import checks
from checks import check
from prom import validate
import service as S

S.init(sys.argv[1], sys.argv[2])

ADMIN = "admin-" + os.urandom(12).hex()
FOLLOWER = "follower-" + os.urandom(12).hex()
SCOPE = "github:repo:read"



def must(name, r):
    if r.status != 200:
        raise RuntimeError("%s: %r" % (name, r))
    return r.json


def self_test():
    """The validator refuses what the old output had (the check is not
    vacuous)."""
    dup = ("# HELP a_total x\n# TYPE a_total counter\n"
           'a_total{route="/p",status="200"} 1\n'
           'a_total{route="/p",status="200"} 2\n')
    twice = "# TYPE b gauge\nb 1\n# TYPE b gauge\n"
    hist = ("# TYPE h histogram\n"
            'h_bucket{le="1"} 3\nh_bucket{le="2"} 2\nh_bucket{le="+Inf"} 4\n'
            "h_sum 1\nh_count 5\n")
    esc = '# TYPE c counter\nc{x="a\\q"} 1\n'
    good = ("# HELP g x\n# TYPE g gauge\ng{a=\"q\\\"\\\\\\n\"} 1\n"
            "# TYPE h histogram\n"
            'h_bucket{le="1"} 3\nh_bucket{le="+Inf"} 4\nh_sum 1\nh_count 4\n')
    check("validator: refuses a duplicate series", validate(dup)[0] != [])
    check("validator: refuses TYPE twice", validate(twice)[0] != [])
    check("validator: refuses decreasing buckets and +Inf != _count",
          len(validate(hist)[0]) == 2, str(validate(hist)[0]))
    check("validator: refuses a bad escape", validate(esc)[0] != [])
    check("validator: takes a good exposition", validate(good)[0] == [],
          str(validate(good)[0]))


def workload(srv, root, admin):
    """A mix on one server; admin: whether it is the leader."""
    body = {"scope": SCOPE, "resource": "r"}
    for _ in range(3):
        S.call(srv, "POST", "/v1/check", body, bearer=root)
    S.call(srv, "POST", "/v1/check", body, bearer="garbage")
    S.call(srv, "GET", "/v1/check", bearer=root)
    S.call(srv, "GET", "/v1/check", bearer=root)
    S.call(srv, "GET", "/v1/whoami", bearer=root)
    S.call(srv, "POST", "/v1/tokens/delegate",
           {"agentId": "child", "requestedScopes": [SCOPE]}, bearer=root)
    S.call(srv, "GET", "/no/such/route")
    S.call(srv, "BREW", "/v1/check", bearer=root)
    S.call(srv, "GET", "/healthz")
    S.call(srv, "GET", "/readyz")
    if admin:
        aws = {"region": "us-east-1",
               "roleArn": "arn:aws:iam::123456789012:role/agent-iam-test",
               "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
               "secretAccessKey": "s" * 40, "externalId": "ext-1234",
               "sessionDuration": 3600}
        for _ in range(2):
            S.call(srv, "PUT", "/v1/admin/providers/aws", aws, bearer=ADMIN)
            S.call(srv, "DELETE", "/v1/admin/providers/aws", bearer=ADMIN)
        S.call(srv, "GET", "/v1/admin/providers/aws", bearer=ADMIN)
        S.call(srv, "POST", "/v1/admin/revoke", {"agentId": "nobody"},
               bearer=ADMIN)
    else:
        S.call(srv, "PUT", "/v1/admin/providers/aws", {}, bearer=ADMIN)


def series(samples, name, **labels):
    want = tuple(sorted(labels.items()))
    return samples.get((name, want))


def examine(role, text, leader):
    errs, samples = validate(text)
    check("%s: /metrics follows the Prometheus text format (%d samples)" %
          (role, len(samples)), errs == [], "; ".join(errs[:8]))
    req = "agent_iam_http_requests_total"
    check("%s: GET /v1/check counted under its route, method GET, 405" %
          role, series(samples, req, route="/v1/check", method="GET",
                       status="405") == 2,
          "\n".join(ln for ln in text.splitlines() if "/v1/check" in ln
                    or "unmatched" in ln))
    check("%s: POST /v1/check 200 and 401 apart" % role,
          series(samples, req, route="/v1/check", method="POST",
                 status="200") == 3 and
          series(samples, req, route="/v1/check", method="POST",
                 status="401") == 1)
    check("%s: a route that does not exist is unmatched, 404" % role,
          series(samples, req, route="unmatched", method="GET",
                 status="404") == 1)
    check("%s: an unknown method is counted as method=\"other\"" % role,
          any(n == req and ("method", "other") in ls
              for (n, ls) in samples))
    check("%s: every request series has route, method and status" % role,
          all(sorted(k for k, _ in ls) == ["method", "route", "status"]
              for (n, ls) in samples if n == req))
    if leader:
        p = "/v1/admin/providers/{name}"
        check("leader: PUT and DELETE of %s are two series" % p,
              series(samples, req, route=p, method="PUT", status="200") == 2
              and series(samples, req, route=p, method="DELETE",
                         status="200") == 2 and
              series(samples, req, route=p, method="GET",
                     status="405") == 1,
              "\n".join(ln for ln in text.splitlines() if "providers" in ln))
        h = "agent_iam_http_request_duration_seconds_count"
        check("leader: the latency histogram by route and method",
              series(samples, h, route=p, method="PUT") == 2 and
              series(samples, h, route=p, method="DELETE") == 2)


def main():
    self_test()
    admin_file = S.secret_file("admin.token", ADMIN)
    fol_file = S.secret_file("follower.token", FOLLOWER)
    L = S.leader("leader", S.home("lhome"), "--admin-token-file", admin_file,
                 "--auth-token-file", fol_file, "--threads", "2")
    F = S.follower("follower", S.home("fhome"), L, "--auth-token-file",
                   fol_file, "--follower-id", "f1", "--threads", "2",
                   "--public-metrics")
    S.wait_for(lambda: S.call(F, "GET", "/readyz").status == 200, 20)
    root = must("root", S.call(L, "POST", "/v1/admin/tokens",
                               {"agentId": "orchestrator", "scopes": [SCOPE],
                                "maxDelegationDepth": 3},
                               bearer=ADMIN))["token"]
    workload(L, root, True)
    workload(F, root, False)
    lm = S.call(L, "GET", "/metrics", bearer=ADMIN)
    fm = S.call(F, "GET", "/metrics")
    check("/metrics answers 200 on both", lm.status == 200 and
          fm.status == 200, "%r %r" % (lm, fm))
    examine("leader", lm.body.decode(), True)
    examine("follower", fm.body.decode(), False)
    L.stop_checked()
    F.stop_checked()


if __name__ == "__main__":
    try:
        main()
    finally:
        S._kill_all()
    print("%d passed, %d failed" % (checks.counts["pass"],
                                    checks.counts["fail"]))
    sys.exit(1 if checks.counts["fail"] else 0)
