"""Stage B3: the bounded automatic fix loop around the 1-epoch validation run.

    report = bugfix(Path("."), sys.executable)      # python -m validators bugfix (nox -s bugfix)

1. Run `scripts/train.py --epochs 1` (tiny `limit_*_batches`) in a subprocess with a timeout. A
   run passes when it exits 0, writes its summary and a checkpoint file, and every metric is finite.
2. On failure, read the error: the first catalog rule (`fixes.py`) that recognises it edits the
   project on a checkpoint of the tree; with no rule and an LLM configured, the LLM's unified diff
   is applied instead (`llm_fix.py`); with neither, the loop stops: "no rule matched".
3. Re-run. A fix that makes the run pass is kept only if the project's tests do not regress; a fix
   that changes the error (or a repeatable one: halve the batch again) stays provisionally; any
   other attempt is rolled back. At most `attempts` fixes are tried; if the run never passes,
   the tree is restored to exactly what it was, so the loop never leaves it worse.

Every attempt (rule, action, diff, run, tests, outcome) is recorded for bugfix_report.md.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fixes import RULES, Context, Failure, FixError, diagnose
from .tree import TreeCheckpoint

DEFAULT_ATTEMPTS = 4
RUN_TIMEOUT_S = 900.0
TEST_TIMEOUT_S = 900.0
LLM_TRIES = 2          # diffs asked of the LLM per error; the second sees why the first was rejected
SUMMARY = "logs/bugfix_run.json"
SMOKE = ("trainer.limit_train_batches=4", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2")
ERROR_LINE = re.compile(r"^(?:[\w.]*(?:Error|Exception|Interrupt)\b.*|error: .+|non-finite .+|Killed)$")
WARNING_LINE = re.compile(r"(\w*Warning): (.+)$")


@dataclass
class RunResult:
    """One training run: whether it passed, and if not, its last error line and output tail."""

    passed: bool
    returncode: int | None
    seconds: float
    timed_out: bool
    error: str
    output: str
    summary: dict[str, Any] | None = None

    def failure(self) -> Failure:
        return Failure(output=self.output, error=self.error, returncode=self.returncode, timed_out=self.timed_out)

    def record(self) -> dict[str, Any]:
        return {"passed": self.passed, "returncode": self.returncode, "seconds": round(self.seconds, 2),
                "timed_out": self.timed_out, "error": self.error or None}


def execute(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int | None, str, float, bool]:
    """(returncode, stdout+stderr, seconds, timed_out); on timeout the whole process group is killed."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, time.perf_counter() - start, False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # dataloader workers too
        out, _ = proc.communicate()
        return None, out or "", time.perf_counter() - start, True


def last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    return (errors or lines or ["<no output>"])[-1][:500]


def run_training(root: Path, python: str, overrides: tuple[str, ...] = (), timeout: float = RUN_TIMEOUT_S) -> RunResult:
    """The 1-epoch validation: exit 0, a summary, a checkpoint file, finite metrics."""
    summary_path = root / SUMMARY
    summary_path.unlink(missing_ok=True)
    cmd = [python, "scripts/train.py", "--epochs", "1", "--summary", SUMMARY, *SMOKE, *overrides]
    code, out, seconds, timed_out = execute(cmd, root, timeout, {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"})
    tail = out[-20000:]
    if timed_out:
        return RunResult(False, None, seconds, True, f"timeout: the run took longer than {timeout:.0f} s", tail)
    if code != 0:
        return RunResult(False, code, seconds, False, last_error(tail), tail)
    if not summary_path.is_file():
        return RunResult(False, code, seconds, False, f"no run summary: {SUMMARY} was not written", tail)
    summary = json.loads(summary_path.read_text(encoding="utf-8"), parse_constant=float)
    checkpoint = summary.get("best_checkpoint") or summary.get("last_checkpoint")
    if not checkpoint or not (root / checkpoint).is_file():
        return RunResult(False, code, seconds, False, f"no checkpoint: the run wrote none ({checkpoint!r})", tail, summary)
    bad = {k: v for k, v in summary.get("metrics", {}).items() if not math.isfinite(v)}
    if bad:
        error = "non-finite metric " + ", ".join(f"{k} = {v}" for k, v in bad.items())
        return RunResult(False, code, seconds, False, error, tail + "\n" + error, summary)
    return RunResult(True, code, seconds, False, "", tail, summary)


@dataclass
class TestResult:
    ran: bool
    failed: list[str]
    seconds: float
    returncode: int | None


def run_tests(root: Path, python: str, timeout: float = TEST_TIMEOUT_S) -> TestResult:
    """The project's pytest suite; `failed` lists the failing and erroring test ids and modules.

    A module that fails to import is reported and the other modules still run
    (`--continue-on-collection-errors`), so one broken test file cannot hide a regression elsewhere.
    """
    if not (root / "tests").is_dir():
        return TestResult(False, [], 0.0, None)
    cmd = [python, "-m", "pytest", "-q", "-rfE", "--continue-on-collection-errors", "-p", "no:cacheprovider", "tests"]
    code, out, seconds, timed_out = execute(cmd, root, timeout)
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.MULTILINE)))
    if timed_out:
        failed.append(f"<timeout after {timeout:.0f} s>")
    elif code not in (0, 1) and not failed:
        failed.append(f"<pytest exit {code}: {last_error(out)}>")
    return TestResult(True, failed, seconds, code)


def new_issue(issues: list[dict[str, Any]], run: RunResult) -> dict[str, Any]:
    found = diagnose(run.failure())
    rule = found[0][0] if found else None
    issue = {"id": f"I{len(issues) + 1}", "rule": rule.name if rule else None,
             "title": rule.title if rule else "unrecognised error", "critical": True,
             "summary": f"{rule.title if rule else 'no catalog rule matches'}: {run.error}",
             "error": run.error, "status": "unfixed", "fixed_by": None}
    issues.append(issue)
    return issue


def warnings_of(output: str, limit: int = 5) -> list[str]:
    seen: list[str] = []
    for m in WARNING_LINE.finditer(output):
        text = f"{m.group(1)}: {m.group(2).strip()}"[:300]
        if text not in seen:
            seen.append(text)
    return seen[:limit]


def bugfix(root: Path, python: str, *, attempts: int = DEFAULT_ATTEMPTS, overrides: tuple[str, ...] = (),
           run_timeout: float = RUN_TIMEOUT_S, test_timeout: float = TEST_TIMEOUT_S, llm_model: str | None = None,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run, diagnose, fix, re-run, at most `attempts` fixes; returns the report's data."""
    started = time.perf_counter()
    start = TreeCheckpoint.take(root)
    issues: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    kept_undo: list[Callable[[], None]] = []
    baseline: list[str] | None = None
    tried: dict[str, set[str]] = {}
    run = run_training(root, python, overrides, run_timeout)
    log(f"bugfix: 1-epoch run {'passed' if run.passed else 'failed'} ({run.seconds:.1f}s){': ' + run.error if run.error else ''}")
    issue = None if run.passed else new_issue(issues, run)
    stop_reason = ""
    while not run.passed and len(records) < attempts:
        failure, done = run.failure(), tried.setdefault(run.error, set())
        checkpoint, ctx = TreeCheckpoint.take(root), Context(root, python)
        record: dict[str, Any] = {"n": len(records) + 1, "issue": issue["id"], "source": None, "action": None,
                                  "files": [], "diff": "", "outcome": "", "reason": "", "run": None, "tests": None}
        t0 = time.perf_counter()
        try:
            for rule, found in diagnose(failure, exclude=done):
                done.add(rule.name)
                record["source"] = rule.name
                record["action"] = rule.fix(ctx, found)
                if record["action"]:
                    break
                record["source"] = None  # the rule does not apply here (a value at its floor)
            llm_tries = sum(1 for r in records if r["source"] == "llm" and r["issue"] == issue["id"])
            if record["source"] is None and llm_model and llm_tries < LLM_TRIES:
                from .llm_fix import llm_fix

                done.add("llm")
                record["source"] = "llm"
                feedback = [r["reason"] for r in records if r["source"] == "llm" and r["issue"] == issue["id"]]
                record["action"] = llm_fix(root, failure, llm_model, feedback=feedback, log=log)
        except (FixError, ValueError) as err:  # a fix that failed, or an LLM diff that was rejected
            record.update(outcome="rejected", reason=str(err))
        if record["source"] is None:
            no_llm = "" if llm_model else " (no LLM configured)"
            stop_reason = ("no catalog rule or LLM diff fixed it" if "llm" in done else
                           f"the matching rules' fixes did not work ({', '.join(sorted(done))}){no_llm}" if done else
                           f"no rule matched{no_llm}")
            log(f"bugfix: {stop_reason}: {run.error}")
            break
        record.update(files=checkpoint.changed(), diff=checkpoint.diff())
        if record["outcome"] == "rejected":
            rollback(checkpoint, ctx)
        else:
            log(f"bugfix: attempt {record['n']}: {record['source']}: {record['action']}")
            new = run_training(root, python, overrides, run_timeout)
            record["run"] = new.record()
            if new.passed:
                tests = run_tests(root, python, test_timeout)
                regressed = tests.failed
                if tests.failed:  # compare with the tree before the loop, only when something fails
                    if baseline is None:
                        now = TreeCheckpoint.take(root)
                        start.restore()
                        baseline = run_tests(root, python, test_timeout).failed
                        now.restore()
                    regressed = sorted(set(tests.failed) - set(baseline))
                record["tests"] = {"ran": tests.ran, "failed": list(tests.failed), "regressed": list(regressed),
                                   "seconds": round(tests.seconds, 2)}
                if regressed:
                    record.update(outcome="rolled_back", reason=f"the tests regressed: {', '.join(regressed)}")
                    rollback(checkpoint, ctx)
                else:
                    record.update(outcome="kept", reason="the run passes and the tests do not regress")
                    run = new
                    kept_undo += ctx.undo
            elif new.error != run.error or RULES.get(record["source"]) and RULES[record["source"]].repeatable:
                record.update(outcome="progressed", reason=f"the error changed to: {new.error}" if new.error != run.error
                              else "the same error again; the rule may apply again")
                if new.error != run.error:
                    issue.update(status="fixed", fixed_by=record["n"])
                    issue = new_issue(issues, new)
                else:  # a repeatable rule (halve the batch again) may claim the same error once more
                    done.discard(record["source"])
                run = new
                kept_undo += ctx.undo
            else:
                record.update(outcome="rolled_back", reason=f"the same error again: {new.error}")
                rollback(checkpoint, ctx)
        record["seconds"] = round(time.perf_counter() - t0, 2)
        records.append(record)
        log(f"bugfix: attempt {record['n']} {record['outcome']}: {record['reason']}")
    if run.passed and issue is not None:
        issue.update(status="fixed", fixed_by=records[-1]["n"])
    if not run.passed:
        if len(records) >= attempts and not stop_reason:
            stop_reason = f"no fix within {attempts} attempts"
        restored = start.restore()
        for undo in reversed(kept_undo):
            undo()
        for item in issues:
            if item["status"] == "fixed":
                item.update(status="unfixed", fixed_by=None,
                            summary=item["summary"] + " (its fix was rolled back: the run never passed)")
        if restored:
            log(f"bugfix: no passing run; restored {len(restored)} file(s): {', '.join(restored)}")
    for text in warnings_of(run.output) if run.passed else []:
        issues.append({"id": f"I{len(issues) + 1}", "rule": None, "title": "warning", "critical": False,
                       "summary": text, "error": text, "status": "noted", "fixed_by": None})
    final = run.record()
    if run.passed and run.summary:
        checkpoint = Path(run.summary.get("best_checkpoint") or run.summary.get("last_checkpoint"))
        if checkpoint.is_absolute() and checkpoint.is_relative_to(root.resolve()):
            checkpoint = checkpoint.relative_to(root.resolve())  # the report stays valid when the project moves
        final.update(checkpoint=checkpoint.as_posix(), metrics=run.summary.get("metrics", {}))
    return {
        "result": "passed" if run.passed and not records else ("fixed" if run.passed else "unfixed"),
        "stop_reason": stop_reason or None,
        "command": ["python", "scripts/train.py", "--epochs", "1", "--summary", SUMMARY, *SMOKE, *overrides],
        "max_attempts": attempts, "run_timeout_s": run_timeout, "test_timeout_s": test_timeout,
        "llm_model": llm_model, "issues": issues, "attempts": records, "final_run": final,
        "seconds": round(time.perf_counter() - started, 2),
    }


def rollback(checkpoint: TreeCheckpoint, ctx: Context) -> None:
    checkpoint.restore()
    for undo in reversed(ctx.undo):
        undo()


