"""Stage B3: the bounded automatic fix loop around the 1-epoch validation run.

    report = FixLoop(project, sys.executable).run()      # python -m validators bugfix (nox -s bugfix)

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import LATEST, RUN_SUMMARY
from ..errors import FixError
from ..project import Project
from .checkpoint import TreeCheckpoint
from .fixes import RULES, Context, Failure, diagnose

DEFAULT_ATTEMPTS = 4
RUN_TIMEOUT_S = 900.0
TEST_TIMEOUT_S = 900.0
LLM_TRIES = 2          # diffs asked of the LLM per error; the second sees why the first was rejected
RUN_NAME = "bugfix"   # its runs are runs/<timestamp>-bugfix/
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


def command(overrides: tuple[str, ...] = ()) -> list[str]:
    """The 1-epoch validation run, as the report records it."""
    return ["python", "scripts/train.py", "--epochs", "1", *SMOKE, f"run.name={RUN_NAME}", *overrides]


def latest_run(project: Project) -> str | None:
    """The folder runs/latest points at (a run makes a new one), or None before the first run."""
    link = project.path(LATEST)
    return os.readlink(link) if link.is_symlink() else None


def run_training(project: Project, python: str, overrides: tuple[str, ...] = (), timeout: float = RUN_TIMEOUT_S) -> RunResult:
    """The 1-epoch validation: exit 0, a summary, a checkpoint file, finite metrics."""
    root = project.root
    before = latest_run(project)
    cmd = [python, "scripts/train.py", *command(overrides)[2:]]
    code, out, seconds, timed_out = execute(cmd, root, timeout, {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"})
    tail = out[-20000:]
    if timed_out:
        return RunResult(False, None, seconds, True, f"timeout: the run took longer than {timeout:.0f} s", tail)
    if code != 0:
        return RunResult(False, code, seconds, False, last_error(tail), tail)
    summary_path = project.path(RUN_SUMMARY)
    if latest_run(project) in (None, before) or not summary_path.is_file():
        return RunResult(False, code, seconds, False, f"no run summary: the run made no new {RUN_SUMMARY}", tail)
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


def run_tests(project: Project, python: str, timeout: float = TEST_TIMEOUT_S) -> TestResult:
    """The project's pytest suite; `failed` lists the failing and erroring test ids and modules.

    A module that fails to import is reported and the other modules still run
    (`--continue-on-collection-errors`), so one broken test file cannot hide a regression elsewhere.
    """
    if not (project.root / "tests").is_dir():
        return TestResult(False, [], 0.0, None)
    cmd = [python, "-m", "pytest", "-q", "-rfE", "--continue-on-collection-errors", "-p", "no:cacheprovider", "tests"]
    code, out, seconds, timed_out = execute(cmd, project.root, timeout)
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.MULTILINE)))
    if timed_out:
        failed.append(f"<timeout after {timeout:.0f} s>")
    elif code not in (0, 1) and not failed:
        failed.append(f"<pytest exit {code}: {last_error(out)}>")
    return TestResult(True, failed, seconds, code)


@dataclass
class Issue:
    """One error the loop met (or a warning of the passing run): the report's `issues` entry."""

    id: str
    rule: str | None
    title: str
    critical: bool
    summary: str
    error: str
    status: str = "unfixed"          # unfixed | fixed | noted
    fixed_by: int | None = None      # the attempt that fixed it


@dataclass
class Attempt:
    """One fix tried: what did it, what it changed, how the re-run and the tests went, and the verdict."""

    n: int
    issue: str
    source: str | None = None         # a catalog rule's name, or "llm"
    action: str | None = None
    files: list[str] = field(default_factory=list)
    diff: str = ""
    outcome: str = ""                 # kept | progressed | rolled_back | rejected
    reason: str = ""
    run: dict[str, Any] | None = None
    tests: dict[str, Any] | None = None
    seconds: float = 0.0


class FixLoop:
    """Run, diagnose, fix, re-run: at most `attempts` fixes, each on a checkpoint of the tree.

    `run()` returns the report's data. `attempt()` applies one fix, `judge()` re-runs and keeps,
    holds or rolls it back, `finish()` restores the tree if the run never passed.
    """

    def __init__(self, project: Project, python: str, *, attempts: int = DEFAULT_ATTEMPTS, overrides: tuple[str, ...] = (),
                 run_timeout: float = RUN_TIMEOUT_S, test_timeout: float = TEST_TIMEOUT_S, llm_model: str | None = None,
                 log: Callable[[str], None] = print):
        self.project, self.python, self.max_attempts, self.overrides = project, python, attempts, overrides
        self.run_timeout, self.test_timeout, self.llm_model, self.log = run_timeout, test_timeout, llm_model, log
        self.issues: list[Issue] = []
        self.attempts: list[Attempt] = []
        self.kept_undo: list[Callable[[], None]] = []   # undo steps of kept fixes (an install), run if nothing passes
        self.tried: dict[str, set[str]] = {}            # error line -> the sources tried on it
        self._baseline: list[str] | None = None
        self.start = TreeCheckpoint.take(project)

    def train(self) -> RunResult:
        return run_training(self.project, self.python, self.overrides, self.run_timeout)

    def new_issue(self, run: RunResult) -> Issue:
        found = diagnose(run.failure())
        rule = found[0][0] if found else None
        issue = Issue(f"I{len(self.issues) + 1}", rule.name if rule else None, rule.title if rule else "unrecognised error",
                      True, f"{rule.title if rule else 'no catalog rule matches'}: {run.error}", run.error)
        self.issues.append(issue)
        return issue

    def baseline(self) -> list[str]:
        """The tests failing on the tree as it was before the loop (run once, only when a test fails)."""
        if self._baseline is None:
            now = TreeCheckpoint.take(self.project)
            self.start.restore()
            self._baseline = run_tests(self.project, self.python, self.test_timeout).failed
            now.restore()
        return self._baseline

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        run = self.train()
        self.log(f"bugfix: 1-epoch run {'passed' if run.passed else 'failed'} ({run.seconds:.1f}s)"
                 f"{': ' + run.error if run.error else ''}")
        issue = None if run.passed else self.new_issue(run)
        stop_reason = ""
        while not run.passed and issue is not None and len(self.attempts) < self.max_attempts:
            checkpoint, ctx = TreeCheckpoint.take(self.project), Context(self.project, self.python)
            attempt = Attempt(len(self.attempts) + 1, issue.id)
            t0 = time.perf_counter()
            if not self.attempt(attempt, run, ctx):
                stop_reason = self.stop_reason(run)
                self.log(f"bugfix: {stop_reason}: {run.error}")
                break
            attempt.files, attempt.diff = checkpoint.changed(), checkpoint.diff()
            if attempt.outcome == "rejected":
                rollback(checkpoint, ctx)
            else:
                run, issue = self.judge(attempt, run, issue, checkpoint, ctx)
            attempt.seconds = round(time.perf_counter() - t0, 2)
            self.attempts.append(attempt)
            self.log(f"bugfix: attempt {attempt.n} {attempt.outcome}: {attempt.reason}")
        return self.finish(run, issue, stop_reason, started)

    def attempt(self, attempt: Attempt, run: RunResult, ctx: Context) -> bool:
        """Apply the first catalog fix that acts, else an LLM diff; False when nothing is left to try."""
        failure, done = run.failure(), self.tried.setdefault(run.error, set())
        try:
            for rule, found in diagnose(failure, exclude=done):
                done.add(rule.name)
                attempt.source, attempt.action = rule.name, rule.fix(ctx, found)
                if attempt.action:
                    break
                attempt.source = None  # the rule does not apply here (a value at its floor)
            earlier = [a for a in self.attempts if a.source == "llm" and a.issue == attempt.issue]
            if attempt.source is None and self.llm_model and len(earlier) < LLM_TRIES:
                from .llm_fix import llm_fix

                done.add("llm")
                attempt.source = "llm"
                attempt.action = llm_fix(self.project, failure, self.llm_model, feedback=[a.reason for a in earlier], log=self.log)
        except (FixError, ValueError) as err:  # a fix that failed, or an LLM diff that was rejected
            attempt.outcome, attempt.reason = "rejected", str(err)
        return attempt.source is not None

    def stop_reason(self, run: RunResult) -> str:
        done = self.tried.get(run.error, set())
        no_llm = "" if self.llm_model else " (no LLM configured)"
        return ("no catalog rule or LLM diff fixed it" if "llm" in done else
                f"the matching rules' fixes did not work ({', '.join(sorted(done))}){no_llm}" if done else
                f"no rule matched{no_llm}")

    def judge(self, attempt: Attempt, run: RunResult, issue: Issue, checkpoint: TreeCheckpoint,
              ctx: Context) -> tuple[RunResult, Issue]:
        """Re-run after the fix: keep it (passes, no test regresses), hold it (progress) or roll it back."""
        self.log(f"bugfix: attempt {attempt.n}: {attempt.source}: {attempt.action}")
        new = self.train()
        attempt.run = new.record()
        if new.passed:
            tests = run_tests(self.project, self.python, self.test_timeout)
            regressed = sorted(set(tests.failed) - set(self.baseline())) if tests.failed else []
            attempt.tests = {"ran": tests.ran, "failed": list(tests.failed), "regressed": regressed,
                             "seconds": round(tests.seconds, 2)}
            if regressed:
                attempt.outcome, attempt.reason = "rolled_back", f"the tests regressed: {', '.join(regressed)}"
                rollback(checkpoint, ctx)
                return run, issue
            attempt.outcome, attempt.reason = "kept", "the run passes and the tests do not regress"
            self.kept_undo += ctx.undo
            return new, issue
        rule = RULES.get(attempt.source or "")
        if new.error != run.error:
            attempt.outcome, attempt.reason = "progressed", f"the error changed to: {new.error}"
            issue.status, issue.fixed_by = "fixed", attempt.n
            issue = self.new_issue(new)
        elif rule and rule.repeatable:  # a repeatable rule (halve the batch again) may claim the same error once more
            attempt.outcome, attempt.reason = "progressed", "the same error again; the rule may apply again"
            self.tried[run.error].discard(attempt.source)
        else:
            attempt.outcome, attempt.reason = "rolled_back", f"the same error again: {new.error}"
            rollback(checkpoint, ctx)
            return run, issue
        self.kept_undo += ctx.undo
        return new, issue

    def finish(self, run: RunResult, issue: Issue | None, stop_reason: str, started: float) -> dict[str, Any]:
        if run.passed and issue is not None:
            issue.status, issue.fixed_by = "fixed", self.attempts[-1].n
        if not run.passed:
            if len(self.attempts) >= self.max_attempts and not stop_reason:
                stop_reason = f"no fix within {self.max_attempts} attempts"
            restored = self.start.restore()
            for undo in reversed(self.kept_undo):
                undo()
            for item in self.issues:
                if item.status == "fixed":
                    item.status, item.fixed_by = "unfixed", None
                    item.summary += " (its fix was rolled back: the run never passed)"
            if restored:
                self.log(f"bugfix: no passing run; restored {len(restored)} file(s): {', '.join(restored)}")
        for text in warnings_of(run.output) if run.passed else []:
            self.issues.append(Issue(f"I{len(self.issues) + 1}", None, "warning", False, text, text, "noted"))
        final = run.record()
        if run.passed and run.summary:
            root = self.project.root.resolve()
            checkpoint = Path(run.summary.get("best_checkpoint") or run.summary.get("last_checkpoint"))
            if checkpoint.is_absolute() and checkpoint.is_relative_to(root):
                checkpoint = checkpoint.relative_to(root)  # the report stays valid when the project moves
            final.update(checkpoint=checkpoint.as_posix(), metrics=run.summary.get("metrics", {}))
        return {
            "result": "passed" if run.passed and not self.attempts else ("fixed" if run.passed else "unfixed"),
            "stop_reason": stop_reason or None,
            "command": command(self.overrides),
            "max_attempts": self.max_attempts, "run_timeout_s": self.run_timeout, "test_timeout_s": self.test_timeout,
            "llm_model": self.llm_model, "issues": [asdict(i) for i in self.issues],
            "attempts": [asdict(a) for a in self.attempts], "final_run": final,
            "seconds": round(time.perf_counter() - started, 2),
        }


def warnings_of(output: str, limit: int = 5) -> list[str]:
    seen: list[str] = []
    for m in WARNING_LINE.finditer(output):
        text = f"{m.group(1)}: {m.group(2).strip()}"[:300]
        if text not in seen:
            seen.append(text)
    return seen[:limit]


def rollback(checkpoint: TreeCheckpoint, ctx: Context) -> None:
    checkpoint.restore()
    for undo in reversed(ctx.undo):
        undo()
