"""Bugfix-loop benchmark: fix rate and time to a fix on the fault corpus (tests/helpers/bugfix_corpus.py).

    python benchmarks/bugfix_bench.py                     # runs the corpus tests once, prints the README table
    python benchmarks/bugfix_bench.py --results r.jsonl   # only print the table of an earlier run

Each corpus fault is a real broken variant of a generated project; the loop's real runs are timed
(`seconds` of bugfix_report.md: the failing run, every fix attempt, its re-run and the tests).
A fault counts as fixed when the corpus test passes: the run passes, the report marks every
critical error fixed, and only the fix's files changed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.bugfix_corpus import FAULTS  # noqa: E402


def run_corpus(results: Path) -> int:
    env = {**os.environ, "HEPHAESTUS_BUGFIX_RESULTS": str(results)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "e2e or corpus", "tests/test_bugfix.py", "-k", "corpus_fault"]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def table(results: Path) -> str:
    rows = {r["fault"]: r for r in map(json.loads, results.read_text().splitlines())}
    lines = ["| fault | rule | fixed | attempts | seconds |", "|---|---|---|---:|---:|"]
    for fault in FAULTS:
        r = rows.get(fault.name)
        lines.append(f"| {fault.name} | {fault.rule} | {'yes' if r else 'no'} | {r['attempts'] if r else '-'} | "
                     f"{r['seconds'] if r else '-'} |")
    times = [r["seconds"] for r in rows.values()]
    lines += ["", f"fix rate: {len(rows)}/{len(FAULTS)}; median time to a fix: "
              f"{statistics.median(times):.1f} s (min {min(times):.1f}, max {max(times):.1f})" if times else "no fault fixed"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="a results file of an earlier run (JSON lines)")
    args = parser.parse_args()
    code = 0
    results = args.results
    if results is None:
        results = Path(tempfile.mkdtemp()) / "bugfix_results.jsonl"
        code = run_corpus(results)
    print(table(results))
    return code


if __name__ == "__main__":
    sys.exit(main())
