"""prom.py - the Prometheus text exposition rules, as the suites that
read /metrics check them (tests/security/metrics_test.py, tests/cluster):
validate(text) gives the problems of an exposition and its samples."""
import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_labels(s, where):
    """The labels of `{...}` (s without the braces): a list of pairs;
    raises ValueError on bad syntax or escaping."""
    out, i = [], 0
    while i < len(s):
        m = re.match(r"([^=]*)=\"", s[i:])
        if not m or not LABEL.match(m.group(1)):
            raise ValueError("%s: bad label name at %r" % (where, s[i:]))
        name, i, val = m.group(1), i + m.end(), ""
        while True:
            if i >= len(s):
                raise ValueError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s) or s[i + 1] not in "\\\"n":
                    raise ValueError("%s: bad escape in %s" % (where, name))
                val += {"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]]
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ValueError("%s: newline in a label value" % where)
            else:
                val += c
                i += 1
        out.append((name, val))
        if i < len(s):
            if s[i] != ",":
                raise ValueError("%s: expected , after %s" % (where, name))
            i += 1
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError("%s: a label twice" % where)
    return out


def family_of(name, types):
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[:-len(suf)]) in (
                "histogram", "summary"):
            return name[:-len(suf)]
    return name


def validate(text):
    """The problems of an exposition (a list of strings, empty when it
    follows the rules) and its samples {(name, labels): value}."""
    errs, samples, types, helps = [], {}, {}, set()
    seen_family, done_families, current = set(), set(), None
    if text and not text.endswith("\n"):
        errs.append("the output does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d" % n
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                fam = parts[2]
                if not NAME.match(fam):
                    errs.append("%s: bad metric name %r" % (where, fam))
                if fam in seen_family:
                    errs.append("%s: %s %s after its samples" %
                                (where, parts[1], fam))
                if parts[1] == "HELP":
                    if fam in helps:
                        errs.append("%s: HELP %s twice" % (where, fam))
                    helps.add(fam)
                    h = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]", h) or h.endswith("\\"):
                        errs.append("%s: bad escape in HELP" % where)
                else:
                    if fam in types:
                        errs.append("%s: TYPE %s twice" % (where, fam))
                    if len(parts) != 4 or parts[3] not in TYPES:
                        errs.append("%s: bad TYPE line" % where)
                    else:
                        types[fam] = parts[3]
            continue
        if line.strip() == "":
            errs.append("%s: empty line" % where)
            continue
        m = re.match(r"([^{\s]+)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$", line)
        if not m:
            errs.append("%s: not a sample: %r" % (where, line))
            continue
        name, value = m.group(1), m.group(4)
        if not NAME.match(name):
            errs.append("%s: bad metric name %r" % (where, name))
        try:
            labels = parse_labels(m.group(3) or "", where)
        except ValueError as e:
            errs.append(str(e))
            continue
        try:
            v = float(value)
        except ValueError:
            errs.append("%s: bad value %r" % (where, value))
            continue
        fam = family_of(name, types)
        if fam != current:
            if fam in done_families:
                errs.append("%s: samples of %s not together" % (where, fam))
            if current is not None:
                done_families.add(current)
            current = fam
        seen_family.add(fam)
        key = (name, tuple(sorted(labels)))
        if key in samples:
            errs.append("%s: duplicate series %s%s" % (where, name,
                                                       dict(labels)))
        samples[key] = v
    # histograms
    for fam, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                rest = tuple(p for p in labels if p[0] != "le")
                le = dict(labels).get("le")
                if le is None:
                    errs.append("%s_bucket without le" % fam)
                    continue
                series.setdefault(rest, []).append(
                    (math.inf if le == "+Inf" else float(le), v))
        for rest, bs in series.items():
            bs.sort()
            vals = [v for _, v in bs]
            if vals != sorted(vals):
                errs.append("%s%s: buckets not cumulative" %
                            (fam, dict(rest)))
            if bs[-1][0] != math.inf:
                errs.append("%s%s: no +Inf bucket" % (fam, dict(rest)))
            cnt = samples.get((fam + "_count", rest))
            if cnt is None or cnt != bs[-1][1]:
                errs.append("%s%s: +Inf %s != _count %s" %
                            (fam, dict(rest), bs[-1][1], cnt))
            if (fam + "_sum", rest) not in samples:
                errs.append("%s%s: no _sum" % (fam, dict(rest)))
    return errs, samples
