#!/usr/bin/env python3
"""Counts GoogleTest cases from meson's JUnit logs and prints "N passed, N failed".

Usage: count_tests.py [--check NAME=ok|failed]... JUNIT... (CI passes one log per build: release, ASan+UBSan,
TSan). Each log gets a line of its own; the last line is the total over all of them.
A test executable that meson saw fail (crash, timeout, a sanitizer's exit status)
without any failed case in its JUnit output still counts as one failure, so nothing
red can hide. Exits non-zero if anything failed or a log is missing.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def summary(passed, failed, skipped):
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    return line


passed = failed = skipped = 0
missing = False
args = sys.argv[1:]
# --check "NAME=ok|failed": a CI step without test cases (a build) counts as one test.
while len(args) >= 2 and args[0] == "--check":
    name, _, result = args[1].partition("=")
    print(f"count_tests: {name}: {result}")
    if result == "ok":
        passed += 1
    else:
        failed += 1
    args = args[2:]
for junit in args:
    if not os.path.exists(junit):
        print(f"count_tests: {junit} is missing (the build or the test run failed)")
        missing = True
        continue
    before = (passed, failed, skipped)
    failed_suites = set()
    for suite in ET.parse(junit).getroot().iter("testsuite"):
        exe = suite.get("name", "").rsplit(".", 1)[0]
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failed_suites.add(exe)
            elif case.find("skipped") is not None or case.get("status") == "notrun":
                skipped += 1
            else:
                passed += 1
    log = os.path.join(os.path.dirname(junit), "testlog.json")
    if os.path.exists(log):
        with open(log) as f:
            for line in f:
                entry = json.loads(line)
                if entry.get("result") in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"):
                    name = entry.get("name", "")
                    if not any(s.endswith(name) for s in failed_suites):
                        print(f"count_tests: {name} failed as a whole ({entry['result']})")
                        failed += 1
    build = os.path.dirname(os.path.dirname(junit)) or "."
    print(f"count_tests: {build}: " + summary(passed - before[0], failed - before[1], skipped - before[2]))

print(summary(passed, failed, skipped))
sys.exit(1 if failed or missing else 0)
