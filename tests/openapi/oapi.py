"""oapi.py - docs/openapi.yaml as the test reads it: the document's own
checks, the operation a request reaches, and a real answer validated
against what the document declares for it (status, content type, body
schema, headers). Standard library, PyYAML and jsonschema."""
import http.client
import json
import os
import re
import ssl
import sys
from urllib.parse import urlsplit

import jsonschema
import yaml

from routes import METHODS

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from service import request_parts  # noqa: E402 (tests/lib)

V = jsonschema.Draft202012Validator
TIMEOUT_S = 15


def closest(e):
    """For a oneOf or anyOf error: the first error of the branch that
    failed least (the one the answer meant to be)."""
    while e.context:
        by = {}
        for c in e.context:
            by.setdefault(c.schema_path[0], []).append(c)
        e = min(by.values(), key=len)[0]
    return e


class Doc:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.d = yaml.safe_load(f)
        self.paths = [(re.compile("^" + re.sub(r"\\\{[^}/]*\\\}", "[^/]+",
                                               re.escape(p)) + "$"), p, item)
                      for p, item in self.d["paths"].items()]

    def resolve(self, o):
        while isinstance(o, dict) and "$ref" in o:
            r = o["$ref"]
            if not r.startswith("#/"):
                raise ValueError("not a local $ref: " + r)
            o = self.d
            for part in r[2:].split("/"):
                o = o[part.replace("~1", "/").replace("~0", "~")]
        return o

    def validator(self, schema):
        """A validator of schema whose #/components refs resolve here."""
        return V({"allOf": [schema], "components": self.d["components"]})

    # ---- the document's own checks -------------------------------------
    def self_check(self):
        """Problems of the document itself (empty: none)."""
        bad = []
        if self.d.get("openapi") != "3.1.0":
            bad.append("openapi is not 3.1.0")

        def walk(o, where):
            if isinstance(o, dict):
                if isinstance(o.get("$ref"), str):
                    try:
                        self.resolve({"$ref": o["$ref"]})
                    except (KeyError, ValueError, TypeError):
                        bad.append("%s: $ref %s does not resolve" %
                                   (where, o["$ref"]))
                for k, v in o.items():
                    walk(v, where + "/" + str(k))
            elif isinstance(o, list):
                for i, v in enumerate(o):
                    walk(v, "%s/%d" % (where, i))
        walk(self.d, "#")
        for name, s in self.d["components"]["schemas"].items():
            try:
                V.check_schema(s)
            except jsonschema.SchemaError as e:
                bad.append("schema %s: %s" % (name, e.message))
        ids = set()
        for _, p, item in self.paths:
            for m, op in item.items():
                if m not in METHODS:
                    continue
                where = "%s %s" % (m.upper(), p)
                if op.get("operationId") in ids or "operationId" not in op:
                    bad.append(where + ": no operationId, or not unique")
                ids.add(op.get("operationId"))
                if not set(op.get("x-served-by", [])) <= {"leader",
                                                          "follower"} or \
                        not op.get("x-served-by"):
                    bad.append(where + ": x-served-by is not leader/follower")
                for st, r in op["responses"].items():
                    for ct, media in self.resolve(r).get("content",
                                                         {}).items():
                        for key in ("schema", "x-ndjson-line"):
                            if key in media:
                                try:
                                    V.check_schema(media[key])
                                except jsonschema.SchemaError as e:
                                    bad.append("%s %s %s: %s" % (
                                        where, st, ct, e.message))
        return bad

    # ---- what a request reaches ----------------------------------------
    def lookup(self, role, method, path):
        """("op", operation, template) for a route the role serves,
        ("405", [methods], template) for its path with another method,
        ("404", None, None) for a path it has no route of."""
        path = path.split("?", 1)[0]
        for rx, tpl, item in self.paths:
            if not rx.match(path):
                continue
            ops = {m: op for m, op in item.items() if m in METHODS and
                   role in op.get("x-served-by", [])}
            if not ops:
                continue
            if method.lower() in ops:
                return "op", ops[method.lower()], tpl
            return "405", sorted(m.upper() for m in ops), tpl
        return "404", None, None

    def check_request(self, op, body):
        """Problems of a request body we send for a 200 (a doc that
        refuses a real, accepted request is wrong)."""
        rb = self.resolve(op.get("requestBody", {}))
        media = rb.get("content", {}).get("application/json")
        if media is None or body is None:
            return []
        return ["request body: " + e.message
                for e in self.validator(media["schema"]).iter_errors(body)]

    def check_answer(self, role, method, path, status, headers, data):
        """Problems of a real answer against the document."""
        kind, op, tpl = self.lookup(role, method, path)
        comps = self.d["components"]["responses"]
        if kind == "404":
            resp = comps["NotFound"] if status == 404 else None
        elif kind == "405":
            resp = comps["MethodNotAllowed"] if status == 405 else None
            allow = {m.strip() for m in headers.get("allow", "").split(",")}
            if status == 405 and allow != set(op):
                return ["Allow is %r, the document has %s" %
                        (headers.get("allow"), ", ".join(op))]
        else:
            resp = op["responses"].get(str(status))
        if resp is None:
            return ["status %d is not declared for %s %s (%s)" % (
                status, method, tpl or path, kind)]
        resp = self.resolve(resp)
        bad = []
        for name, h in resp.get("headers", {}).items():
            h = self.resolve(h)
            v = headers.get(name.lower())
            if v is None:
                if h.get("required"):
                    bad.append("header %s missing" % name)
            else:
                bad += ["header %s: %s" % (name, e.message) for e in
                        self.validator(h["schema"]).iter_errors(v)]
        ctype = headers.get("content-type", "")
        content = resp.get("content", {})
        if ctype not in content:
            return bad + ["content type %r, the document has %s" % (
                ctype, ", ".join(content) or "none")]
        media = content[ctype]
        if method == "HEAD":
            return bad
        try:
            if "x-ndjson-line" in media:
                docs = [json.loads(line) for line in
                        data.decode("utf-8").splitlines()]
                schema = media["x-ndjson-line"]
            elif ctype.startswith("application/json"):
                docs, schema = [json.loads(data)], media["schema"]
            else:
                docs, schema = [data.decode("utf-8")], media["schema"]
        except (ValueError, UnicodeDecodeError) as e:
            return bad + ["body does not parse: %s" % e]
        v = self.validator(schema)
        for i, d in enumerate(docs):
            for e in v.iter_errors(d):
                e = closest(e)
                path_s = "/".join(str(p) for p in e.absolute_path)
                bad.append("body%s%s: %s" % (
                    " line %d" % (i + 1) if len(docs) > 1 else "",
                    " at " + path_s if path_s else "", e.message[:300]))
        return bad


class Server:
    """A leader or follower at an https URL."""

    def __init__(self, role, url, ca):
        u = urlsplit(url)
        self.role, self.url, self.host, self.port = role, url, u.hostname, \
            u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.conn = None

    def request(self, method, path, body=None, bearer=None, headers=None,
                keep=False):
        """(status, {lower-case header: value}, body bytes); keep: reuse
        one connection (for a run of requests)."""
        body, h = request_parts(body, bearer, headers)
        c = self.conn if keep and self.conn else http.client.HTTPSConnection(
            self.host, self.port, context=self.ctx, timeout=TIMEOUT_S)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        except Exception:
            c.close()
            self.conn = None
            raise
        if keep and not r.will_close:
            self.conn = c
        else:
            c.close()
            if keep:
                self.conn = None
        return r.status, hdrs, data
