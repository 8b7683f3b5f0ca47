#!/usr/bin/env python3
"""Read pytest junit XML from a kazoo test-suite run (tests/kazoo/run.sh).

Default mode -- the rookeeper gate:

    compare.py JUNIT_XML [APACHE_PASSING_TXT] [--ignore-missing]

  APACHE_PASSING_TXT (default: apache-passing.txt beside this script) lists
  the pytest node ids that pass against Apache ZooKeeper, one per line
  ('#' comments and blank lines ignored).  Every one of them must pass in
  JUNIT_XML.  Prints the ones that did not (failed, errored, skipped, or not
  run at all -- the latter unless --ignore-missing, for partial runs), then
  the raw totals of the run, and finally a line

      N passed, M failed, K skipped

  where N = Apache-passing tests that passed here, M = Apache-passing tests
  that did not (the regressions; exit status 1 when M > 0), and K = tests of
  this run outside the Apache-passing set (not gated: they fail or skip on
  Apache too, under the same harness settings).

Other modes (used by run.sh):

    compare.py --summary JUNIT_XML     Markdown per-file table + failure list
    compare.py --list-passed JUNIT_XML node ids of passing tests, sorted

Only the standard library is used, so any python3 can run it.
"""

import argparse
import fnmatch
import collections
import os
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"


class Case(object):
    __slots__ = ("nodeid", "file", "status", "reason", "time")

    def __init__(self, nodeid, file, status, reason, time):
        self.nodeid = nodeid
        self.file = file
        self.status = status
        self.reason = reason
        self.time = time


def _module_and_file(classname):
    """Guess (dotted module, file path) from a junit classname when the
    testcase has no file attribute (e.g. collection errors)."""
    parts = classname.split(".")
    for i, p in enumerate(parts):
        if p.startswith("test_") or p == "conftest":
            mod = ".".join(parts[: i + 1])
            return mod, "/".join(parts[: i + 1]) + ".py"
    return classname, classname.replace(".", "/") + ".py"


def _first_line(text, limit=300):
    text = (text or "").strip()
    line = text.splitlines()[0] if text else ""
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    return line


def parse_junit(path):
    root = ET.parse(path).getroot()
    cases = []
    for tc in root.iter("testcase"):
        classname = tc.get("classname", "") or ""
        name = tc.get("name", "") or ""
        file = tc.get("file")
        # xunit1's file= is where the test *function* is defined; for an
        # inherited test (e.g. TestGeventClient in test_gevent_handler.py
        # reusing test_client.py's methods) that is not the module the test
        # was collected from, which the classname (and the node id) names.
        fmod = None
        if file and file.endswith(".py"):
            fmod = file[:-3].replace("/", ".")
        if fmod and (classname == fmod or classname.startswith(fmod + ".")):
            module = fmod
        elif classname:
            module, file = _module_and_file(classname)
        elif file:
            module = fmod or file
        else:
            # collection error: pytest puts the module path in name
            module, file = _module_and_file(name)
            name = ""
        if classname == module or not classname:
            rest = []
        elif classname.startswith(module + "."):
            rest = classname[len(module) + 1:].split(".")
        else:
            rest = [classname]
        nodeid = "::".join([file] + rest + ([name] if name else []))

        failure = tc.find("failure")
        error = tc.find("error")
        skipped = tc.find("skipped")
        if failure is not None:
            status, el = FAILED, failure
        elif error is not None:
            status, el = ERROR, error
        elif skipped is not None:
            status, el = SKIPPED, skipped
        else:
            status, el = PASSED, None
        reason = ""
        if el is not None:
            reason = _first_line(el.get("message")) or _first_line(el.text)
        try:
            t = float(tc.get("time", "0") or 0)
        except ValueError:
            t = 0.0
        cases.append(Case(nodeid, file, status, reason, t))
    # Some pytest versions emit a second <testcase> for a teardown error of
    # an already-reported test; merge by nodeid, worst status wins.
    rank = {PASSED: 0, SKIPPED: 1, ERROR: 2, FAILED: 3}
    merged = collections.OrderedDict()
    for c in cases:
        old = merged.get(c.nodeid)
        if old is None:
            merged[c.nodeid] = c
        else:
            if rank[c.status] > rank[old.status]:
                old.status, old.reason = c.status, c.reason
            old.time += c.time
    return list(merged.values()), root


def suite_time(root):
    total = 0.0
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    for s in suites:
        try:
            total += float(s.get("time", "0") or 0)
        except ValueError:
            pass
    return total


def totals(cases):
    c = collections.Counter(x.status for x in cases)
    return c[PASSED], c[FAILED], c[ERROR], c[SKIPPED]


def cmd_summary(junit):
    cases, root = parse_junit(junit)
    per_file = collections.OrderedDict()
    for c in sorted(cases, key=lambda c: c.file):
        per_file.setdefault(c.file, []).append(c)
    out = []
    out.append("| test file | passed | failed | errors | skipped | total |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for f, cs in per_file.items():
        p, fl, e, s = totals(cs)
        out.append("| %s | %d | %d | %d | %d | %d |" % (os.path.basename(f), p, fl, e, s, len(cs)))
    p, fl, e, s = totals(cases)
    out.append("| **total** | **%d** | **%d** | **%d** | **%d** | **%d** |" % (p, fl, e, s, len(cases)))
    out.append("")
    out.append("Wall time reported by pytest: %.0f s" % suite_time(root))
    bad = [c for c in cases if c.status in (FAILED, ERROR)]
    if bad:
        out.append("")
        out.append("Failed / errored tests:")
        out.append("")
        for c in bad:
            out.append("- `%s` (%s): %s" % (c.nodeid, c.status, c.reason or "?"))
    skipped = [c for c in cases if c.status == SKIPPED]
    if skipped:
        out.append("")
        out.append("Skipped tests:")
        out.append("")
        for c in skipped:
            out.append("- `%s`: %s" % (c.nodeid, c.reason or "?"))
    print("\n".join(out))
    print("%d passed, %d failed, %d skipped" % (p, fl + e, s))
    return 0


def cmd_list_passed(junit):
    cases, _ = parse_junit(junit)
    for nodeid in sorted(c.nodeid for c in cases if c.status == PASSED):
        print(nodeid)
    return 0


def read_ids(path):
    ids = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#"):
                ids.append(line)
    return ids


def read_known(path):
    """known-gaps.txt: `pattern  # reason` per line (fnmatch patterns over
    node ids). These are Apache-passing tests that rookeeper does not pass
    yet, each with the reason and the issue that will close it; they are
    reported on every run but do not fail the gate."""
    known = []
    if not path or not os.path.exists(path):
        return known
    with open(path) as fh:
        for line in fh:
            body, _, reason = line.partition("#")
            body = body.strip()
            if body:
                known.append((body, reason.strip()))
    return known


def known_reason(known, nodeid):
    for pat, reason in known:
        if fnmatch.fnmatchcase(nodeid, pat):
            return reason or "documented gap"
    return None


def cmd_gate(junit, passing_path, ignore_missing, known_path=None):
    known = read_known(known_path)
    cases, _ = parse_junit(junit)
    by_id = {c.nodeid: c for c in cases}
    expected = read_ids(passing_path)
    expected_set = set(expected)

    ok, regressed, missing = [], [], []
    for nid in expected:
        c = by_id.get(nid)
        if c is None:
            missing.append(nid)
        elif c.status == PASSED:
            ok.append(nid)
        else:
            regressed.append(c)

    gaps = [c for c in regressed if known_reason(known, c.nodeid)]
    regressed = [c for c in regressed if not known_reason(known, c.nodeid)]
    if gaps:
        print("Known gaps: Apache-passing tests rookeeper does not pass yet (%d; see known-gaps.txt):" % len(gaps))
        for c in gaps:
            print("  %-7s %s: %s [%s]" % (c.status.upper(), c.nodeid, c.reason or "?",
                                        known_reason(known, c.nodeid)))
    closed = [nid for nid in ok if known_reason(known, nid)]
    if closed:
        print("Listed as known gaps but passing now (%d; prune known-gaps.txt if this holds):" % len(closed))
        for nid in closed:
            print("  %s" % nid)

    if regressed:
        print("Apache-passing tests that did not pass on rookeeper (%d):" % len(regressed))
        for c in regressed:
            print("  %-7s %s: %s" % (c.status.upper(), c.nodeid, c.reason or "?"))
    if missing:
        if ignore_missing:
            print("(%d Apache-passing tests were not run; ignored)" % len(missing))
        else:
            print("Apache-passing tests missing from this run (%d):" % len(missing))
            for nid in missing:
                print("  MISSING %s" % nid)
    extra_pass = [c.nodeid for c in cases if c.nodeid not in expected_set and c.status == PASSED]
    if extra_pass:
        print("Tests passing here but not on Apache (%d; consider updating apache-passing.txt):" % len(extra_pass))
        for nid in extra_pass[:20]:
            print("  %s" % nid)
        if len(extra_pass) > 20:
            print("  ... and %d more" % (len(extra_pass) - 20))

    p, fl, e, s = totals(cases)
    print("rookeeper run totals: %d passed, %d failed, %d errors, %d skipped (%d tests)"
          % (p, fl, e, s, len(cases)))
    n_bad = len(regressed) + (0 if ignore_missing else len(missing))
    not_gated = sum(1 for c in cases if c.nodeid not in expected_set)
    print("gate: %d Apache-passing tests, %d pass here, %d known gaps, %d regressed%s"
          % (len(expected), len(ok), len(gaps), len(regressed),
             "" if ignore_missing else ", %d not run" % len(missing)))
    print("%d passed, %d failed, %d skipped" % (len(ok), n_bad, not_gated + len(gaps)))
    return 1 if n_bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("junit", help="pytest junit xml")
    ap.add_argument("passing", nargs="?", default=os.path.join(HERE, "apache-passing.txt"),
                    help="Apache-passing node ids (default: %(default)s)")
    ap.add_argument("--known", default=os.path.join(HERE, "known-gaps.txt"),
                    help="documented gaps that do not fail the gate (default: known-gaps.txt)")
    ap.add_argument("--ignore-missing", action="store_true",
                    help="do not count Apache-passing tests absent from the run")
    ap.add_argument("--summary", action="store_true", help="print per-file Markdown summary")
    ap.add_argument("--list-passed", action="store_true", help="print passing node ids")
    a = ap.parse_args(argv)
    if not os.path.exists(a.junit):
        print("no junit xml at %s" % a.junit, file=sys.stderr)
        print("0 passed, 1 failed, 0 skipped")
        return 2
    if a.summary:
        return cmd_summary(a.junit)
    if a.list_passed:
        return cmd_list_passed(a.junit)
    return cmd_gate(a.junit, a.passing, a.ignore_missing, a.known)


if __name__ == "__main__":
    sys.exit(main())
