"""The sandbox's conformance measure: dynalite's mocha suite, written against real DynamoDB, run at the sandbox.

    python conformance/run.py                     # every suite, compared with known-differences.txt
    python conformance/run.py --suites getItem    # some suites only
    python conformance/run.py --update            # rewrite the list (only ever to remove fixed titles)

Starts a sandbox in this process (IAM off: the suite signs with dummy keys), runs the vendored tests under
``conformance/dynalite/test`` in REMOTE mode against it (``npm ci`` first if ``node_modules`` is missing; it
installs from the npm registry, nothing else is fetched), and compares the failing test titles with the committed
list of known differences. Exit status 1 when a test fails that is not on the list (a regression) or a line is
``unsorted`` or ``lenient`` (the sandbox must never accept what DynamoDB refuses); a listed test that now passes is
reported so that it is removed from the list (the list may only shrink). ``--allow-lenient`` reports lenient
lines without failing (for a branch that is sorting new ones).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE_DIR = HERE / "dynalite"
KNOWN = HERE / "known-differences.txt"
SANDBOX_LOG = HERE / "last-run-sandbox.log"
MAX_CONFIRM = 30  # new failures re-run alone, per suite (more than this is a regression anyway)
SUITES = [
    "getItem",
    "putItem",
    "updateItem",
    "deleteItem",
    "batchGetItem",
    "batchWriteItem",
    "query",
    "scan",
    "describeTable",
    "createTable",
]


def ensure_node_modules() -> None:
    """Install the suite's pinned devDependencies (package-lock.json) from the npm registry, once."""
    if (SUITE_DIR / "node_modules" / ".bin" / "mocha").exists():
        return
    if shutil.which("npm") is None:
        sys.exit("npm is needed for the conformance suite (Node.js 20+): apt-get install nodejs npm")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=SUITE_DIR, check=True)


def _mocha(args: list[str], env: dict[str, str], timeout_s: float) -> list[tuple[str, dict]]:
    """Run mocha with the json-stream reporter: one event a line, so a suite that crashes mocha keeps what ran."""
    cmd = [
        str(SUITE_DIR / "node_modules" / ".bin" / "mocha"),
        "--require",
        "should",
        "--require",
        "./isolate.js",
        "--reporter",
        "json-stream",
        *args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            cwd=SUITE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
        )
        out = proc.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
    events = []
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith('["'):
            try:
                kind, data = json.loads(line)
            except ValueError:
                continue
            events.append((kind, data))
    return events


def _numbered(titles: list[str]) -> list[str]:
    """A few tests share a title: the second one is "<title> (2)", in the suite's order."""
    seen: Counter[str] = Counter()
    out = []
    for title in titles:
        seen[title] += 1
        out.append(title if seen[title] == 1 else f"{title} ({seen[title]})")
    return out


def _grep(titles: list[str]) -> list[str]:
    """mocha arguments selecting exactly these tests (by full title; numbered duplicates select the title)."""
    plain = sorted({re.sub(r" \(\d+\)$", "", t) for t in titles})
    return ["--grep", "^(?:" + "|".join(re.escape(t) for t in plain) + ")$"]


class Runner:
    """Runs suite files in mocha processes of their own, each on an emptied sandbox (the REMOTE suite creates its
    tables itself and expects them absent)."""

    def __init__(self, env: dict[str, str], timeout_ms: int, reset: Callable[[], None]) -> None:
        self.env, self.timeout_ms, self.reset = env, timeout_ms, reset

    def _run(self, name: str, select: list[str]) -> list[tuple[str, dict]]:
        self.reset()
        args = ["--timeout", str(self.timeout_ms), *select, f"test/{name}.js"]
        return [
            (kind, d)
            for kind, d in _mocha(args, self.env, 900)
            if kind in ("pass", "fail") and "fullTitle" in d
        ]

    def suite(self, name: str) -> dict[str, tuple[str, str]]:
        """One suite file: {title: (outcome, message)}, against the suite's full list from a dry run.

        Should mocha stop mid-file (an error thrown outside any test), the tests it did not reach are run again,
        selected by title, for as long as each rerun gets further. What never runs (under a failing before-hook)
        is "not run".
        """
        listed = _mocha(["--dry-run", f"test/{name}.js"], self.env, 60)
        titles = _numbered([d["fullTitle"] for kind, d in listed if kind == "pass"])
        outcome: dict[str, tuple[str, str]] = {t: ("not run", "") for t in titles}
        select: list[str] = []
        while True:
            ran = self._run(name, select)
            progressed = False
            for key, (kind, data) in zip(_numbered([d["fullTitle"] for _, d in ran]), ran, strict=True):
                if outcome.get(key, ("",))[0] != "not run":
                    key = re.sub(r" \(\d+\)$", "", key)  # a rerun numbers its duplicates afresh
                if key in outcome and outcome[key][0] == "not run":  # hook failures carry a hook's title
                    outcome[key] = (
                        ("passed", "") if kind == "pass" else ("failed", str(data.get("err", ""))[:300])
                    )
                    progressed = True
            remaining = [t for t, (result, _) in outcome.items() if result == "not run"]
            if not remaining or not progressed:
                return outcome
            select = _grep(remaining)

    def fails_alone(self, name: str, title: str) -> bool:
        """Run one test alone: True when it fails (or does not run) there too."""
        return not any(kind == "pass" for kind, _ in self._run(name, _grep([title])))


def suite_env(endpoint: str) -> dict[str, str]:
    env = {
        **os.environ,
        "REMOTE": "1",
        "DYNAMODB_ENDPOINT": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "conformance",
        "AWS_SECRET_ACCESS_KEY": "conformance",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    return env


KINDS = {
    "behaviour": "both answer, the result differs (order, counts, values, capacity)",
    "wording": "both refuse with the same error code; only the message, or which of two faults is named, differs",
    "state": "needs a table state the sandbox does not have (e.g. CREATING: sandbox tables are ACTIVE at once)",
    "lenient": "the sandbox accepts what DynamoDB refuses, or answers another error code: must be fixed",
    "unsorted": "not yet sorted into a kind (a title new to the list): sort it, fix it if it is lenient",
}
FORBIDDEN = ("lenient", "unsorted")  # kinds printed loudly after every run
ALWAYS_FAIL = ("unsorted",)  # a list holding these fails the run; `lenient` too unless --allow-lenient


def parse_known(text: str) -> dict[str, str]:
    """{title: kind} from the list's lines ``kind<TAB>title``; a line without a kind is ``unsorted``."""
    known: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        kind, tab, title = line.partition("\t")
        if not tab:
            kind, title = "unsorted", line
        if kind not in KINDS:
            raise ValueError(f"{KNOWN.name} line {number}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        known[title] = kind
    return known


def read_known() -> dict[str, str]:
    return parse_known(KNOWN.read_text()) if KNOWN.exists() else {}


def format_known(known: dict[str, str]) -> str:
    header = (
        "# dynalite tests (full titles) the sandbox is known to fail, one a line: kind<TAB>title.\n"
        "# This list may only shrink: a new failure fails `make conformance`; a fixed test must be removed\n"
        "# (python conformance/run.py --update keeps the kinds; a title it adds is `unsorted`).\n"
        "# Kinds (an `unsorted` or `lenient` line fails the run; --allow-lenient only reports lenient ones):\n"
        + "".join(f"#   {kind:<10} {meaning}\n" for kind, meaning in KINDS.items())
        + "# See docs/reference/sandbox-conformance.md.\n"
    )
    return header + "".join(f"{known[t]}\t{t}\n" for t in sorted(known))


def write_known(known: dict[str, str]) -> None:
    KNOWN.write_text(format_known(known))


def updated(known: dict[str, str], ran: set[str], failing: set[str]) -> dict[str, str]:
    """The list after a run: titles of suites not run stay, those run are this run's failures (kinds kept)."""
    return {t: known.get(t, "unsorted") for t in (set(known) - ran) | failing}


def forbidden_lines(known: dict[str, str]) -> list[str]:
    """The messages for lines whose kind may not stay on the list (empty when the list is acceptable)."""
    return [
        f"{kind.upper()} DIFFERENCE: {title}" for title, kind in sorted(known.items()) if kind in FORBIDDEN
    ]


def check_kinds(known: dict[str, str], require_no_lenient: bool = True) -> int:
    """Print what to do about lenient/unsorted lines; 1 when an unsorted one is listed, or (unless
    ``require_no_lenient`` is False: --allow-lenient) a lenient one."""
    bad = forbidden_lines(known)
    for message in bad:
        print(message)
    counts = Counter(kind for kind in known.values() if kind in FORBIDDEN)
    if counts["lenient"]:
        print(
            f"{counts['lenient']} LENIENT DIFFERENCE(S) in {KNOWN.name}: the sandbox accepts what DynamoDB "
            "refuses there, so the runbook may pass a rehearsal that AWS would fail. Fix each one in "
            "recovery_helpers/sandbox/ (with a test) so it leaves the list (python conformance/run.py --update). "
            + ("This fails the run." if require_no_lenient else "Not failing the run (--allow-lenient).")
        )
    if counts["unsorted"]:
        print(
            f"{counts['unsorted']} UNSORTED line(s) in {KNOWN.name}: give each its kind (behaviour, wording, "
            "state or lenient) by reading its message (--failures). This fails the run."
        )
    failing_kinds = ALWAYS_FAIL + (("lenient",) if require_no_lenient else ())
    return 1 if any(counts[kind] for kind in failing_kinds) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suites",
        nargs="*",
        default=SUITES,
        choices=SUITES,
        metavar="SUITE",
        help=f"suites to run (default: all of {', '.join(SUITES)})",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="rewrite known-differences.txt with this run's failures of the suites run",
    )
    parser.add_argument("--timeout-ms", type=int, default=30000, help="mocha's per-test timeout")
    parser.add_argument(
        "--no-confirm",
        action="store_true",
        help="do not re-run new failures alone (faster; a late assertion may blame the next test)",
    )
    parser.add_argument("--failures", action="store_true", help="print each failing test and its message")
    parser.add_argument(
        "--allow-lenient",
        action="store_true",
        help="report `lenient` lines without failing the run (by default a lenient line fails it)",
    )
    args = parser.parse_args(argv)

    ensure_node_modules()
    sys.path.insert(0, str(HERE.parent))
    from recovery_helpers.sandbox import Sandbox

    started = time.monotonic()
    known = read_known()
    # moto's tracebacks go to the log, out of the way
    with open(SANDBOX_LOG, "w") as log, contextlib.redirect_stderr(log), Sandbox(enforce_iam=False) as sb:
        runner = Runner(suite_env(sb.endpoint_url), args.timeout_ms, sb.reset)
        results = {name: runner.suite(name) for name in args.suites}
        # an assertion left over from one test could still be blamed on another: a new failure counts once it
        # also fails alone
        for name, outcome in results.items():
            suspects = [t for t, (result, _) in outcome.items() if result != "passed" and t not in known]
            for title in [] if args.no_confirm else suspects[:MAX_CONFIRM]:
                if not runner.fails_alone(name, title):
                    outcome[title] = ("passed", "")
    elapsed = time.monotonic() - started

    failing: set[str] = set()
    total: Counter[str] = Counter()
    print(f"{'suite':<16}{'passed':>8}{'failed':>8}{'not run':>9}{'total':>7}")
    for name, outcome in results.items():
        c = Counter(result for result, _ in outcome.values())
        total += c
        print(f"{name:<16}{c['passed']:>8}{c['failed']:>8}{c['not run']:>9}{len(outcome):>7}")
        for title, (result, message) in outcome.items():
            if result != "passed":
                failing.add(title)
                if args.failures:
                    print(f"  {result.upper()}: {title}\n      {message}")
    print(
        f"{'total':<16}{total['passed']:>8}{total['failed']:>8}{total['not run']:>9}{sum(total.values()):>7}"
        f"   ({elapsed:.0f} s)"
    )

    ran_titles = {t for outcome in results.values() for t in outcome}
    known_here = set(known) & ran_titles
    if args.update:
        kept = updated(known, ran_titles, failing)
        write_known(kept)
        print(f"{KNOWN.name} rewritten: {len(kept)} titles")
        return check_kinds(kept, not args.allow_lenient)
    fixed, new = sorted(known_here - failing), sorted(failing - set(known))
    for title in fixed:
        print(f"FIXED (remove it from {KNOWN.name}): {title}")
    for title in new:
        print(f"NEW FAILURE: {title}")
    if new:
        print(
            f"{len(new)} test(s) fail that are not in {KNOWN.name}: the sandbox regressed. Sandbox log: {SANDBOX_LOG}"
        )
        return 1
    if fixed:
        print(f"{len(fixed)} known difference(s) now pass: remove them (python conformance/run.py --update)")
    print("conformance: no new difference")
    return check_kinds(known, not args.allow_lenient)


if __name__ == "__main__":
    sys.exit(main())
