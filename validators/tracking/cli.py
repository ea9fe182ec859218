"""The command line of stages D1 and D5-D7 (`python -m validators <command>`; nox sessions run them).

    sync-agent --watch DIR [--once] [--interval S] [--ledger PATH]   D5: upload each finished offline run once
    sync-agent status --watch DIR | --ledger PATH                    D5: the ledger as a table (exit 1: a run failed)
    sync-agent retry RUN --watch DIR | --ledger PATH                 D5: unpark a failed run (RUN: run id or path)
    results [RUN | JOB] [--pr N] [--no-images] [--branch B]          D6: curves, metrics vs the SLA; a PR comment
    note [RUN | JOB]                                                  D7: the run's permanent note (default runs/latest)

The agent runs where there is internet (a login node), on the folder the jobs write their runs
into; `WANDB_API_KEY` comes from its environment only. docs/tracking.md shows it under systemd,
nohup and tmux.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..artifacts import NOTES_INDEX
from ..errors import UsageError
from ..project import Project
from . import notes
from .agent import Settings, run
from .comment import BRANCH, publish
from .github import GitHub
from .results import collect, resolve, write
from .sync_ledger import FAILED, SEEN, SyncLedger, default_path

ACTIONS = ("run", "status", "retry")


def seconds(text: str) -> float:
    """A positive number of seconds, or argparse's one-line error naming the value."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds > 0")
    return value


def count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return int(text)


def register(sub: Any) -> None:
    """Add the D5, D6 and D7 subcommands to the validators' argument parser (D1 is a gate only)."""
    defaults = Settings(Path("."), Path("."))
    p = sub.add_parser("sync-agent", help="D5: upload each finished W&B offline run once (status: the ledger; retry RUN)")
    p.add_argument("action", nargs="?", default="run", choices=ACTIONS, help="run the agent (default), status, or retry RUN")
    p.add_argument("run", nargs="?", help="retry: the run id, run folder or .wandb file (as `status` prints it)")
    p.add_argument("--watch", type=Path, help="the folder the jobs write runs into (searched for offline-run-*/run-*.wandb)")
    p.add_argument("--ledger", type=Path, help="the SQLite ledger (default: <DIR>.sync.sqlite beside the watched folder)")
    p.add_argument("--once", action="store_true", help="one pass, then exit (1 if a run is parked failed)")
    p.add_argument("--interval", type=seconds, default=defaults.interval_s, help="seconds between passes (default: %(default)s)")
    p.add_argument("--grace", type=seconds, default=defaults.grace_s,
                   help="seconds a finished run's file must be unchanged before it is synced (default: %(default)s)")
    p.add_argument("--partial-after", type=seconds, default=defaults.partial_after_s,
                   help="seconds unchanged after which a run with no exit record is synced as partial (default: %(default)s)")
    p.add_argument("--timeout", type=seconds, default=defaults.timeout_s, help="seconds one `wandb sync` may take (default: %(default)s)")
    p.add_argument("--attempts", type=count, default=defaults.attempts, help="failures before a run is parked failed (default: %(default)s)")
    p.add_argument("--backoff", type=seconds, default=defaults.backoff_s,
                   help="seconds before the first retry, doubling after each failure (default: %(default)s)")
    p.add_argument("--wait-lock", action="store_true", help="if another agent holds the ledger, wait for it instead of exiting")
    p.set_defaults(handler=sync_agent)
    register_results(sub)
    p = sub.add_parser("note", help="D7: the run's permanent note in notes/ (a revision appended when it exists), and the index")
    p.add_argument("target", nargs="?", metavar="RUN | JOB",
                   help="a run folder (runs/<name> or its name; default: runs/latest) or a job id (<backend>-<id> or the id)")
    p.set_defaults(handler=note)


def pr_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a pull request number")
    return int(text)


def register_results(sub: Any) -> None:
    p = sub.add_parser("results", help="D6: a run's curves and metrics against the SLA in reports/results/<run>/ (--pr N: "
                                       "also as a pull-request comment)")
    p.add_argument("target", nargs="?", help="RUN (runs/<name> or its name; default runs/latest) or JOB (<backend>-<id>)")
    p.add_argument("--pr", type=pr_number, help="comment on this pull request (GITHUB_REPOSITORY, GITHUB_TOKEN, "
                                                "GITHUB_API_URL from the environment); a later call updates the comment")
    p.add_argument("--no-images", action="store_true", help="--pr: store no PNG in the repository; the comment says "
                                                            "where they are")
    p.add_argument("--branch", default=BRANCH, help="--pr: the branch the PNGs are stored on (default: %(default)s)")
    p.set_defaults(handler=results_command)


def ledger_path(args: argparse.Namespace) -> Path:
    if args.ledger:
        return args.ledger
    if args.watch:
        return default_path(args.watch)
    raise UsageError("sync-agent needs --watch DIR (the folder of the runs) or --ledger PATH")


def sync_agent(project: Project, args: argparse.Namespace) -> int:
    if args.action == "run":
        if args.run:
            raise UsageError(f"unexpected {args.run!r}: only `sync-agent retry` takes a run")
        if not args.watch:
            raise UsageError("sync-agent needs --watch DIR: the folder the jobs write their runs into")
        settings = Settings(watch=args.watch, ledger=ledger_path(args), interval_s=args.interval, grace_s=args.grace,
                            partial_after_s=args.partial_after, timeout_s=args.timeout, attempts=args.attempts,
                            backoff_s=args.backoff)
        failed = run(settings, once=args.once, wait_lock=args.wait_lock, report=lambda line: print(line, flush=True))
        return 1 if args.once and failed else 0
    path = ledger_path(args)
    if not path.is_file():
        raise UsageError(f"{path}: no sync ledger here (hint: the agent creates it beside the folder it watches; "
                         "pass that folder with --watch, or the file with --ledger)")
    with SyncLedger.open(path) as ledger:
        return status(ledger) if args.action == "status" else retry(ledger, args.run)


def status(ledger: SyncLedger) -> int:
    """The ledger as a table; exit 1 when any run is parked `failed`, so cron and CI can alert."""
    rows = ledger.rows()
    header = ("run", "run id", "state", "tries", "bytes", "synced at", "url / last error")
    table = [header] + [(os.path.dirname(r.run_path) or r.run_path, r.run_id, r.state, str(r.attempts), str(r.size),
                         r.synced_at or "-", r.url or (r.last_error.splitlines() or ["-"])[0][:100]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    states = [r.state for r in rows]
    print(f"{len(rows)} run content(s): " + (", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states)) or "none yet"))
    return 1 if FAILED in states else 0


def retry(ledger: SyncLedger, key: str | None) -> int:
    if not key:
        raise UsageError("sync-agent retry needs the run: its run id or folder, as `sync-agent status` prints it")
    failed = [row for row in ledger.of_run(key.rstrip("/")) if row.state == FAILED]
    if not failed:
        known = sorted({row.run_id for row in ledger.rows() if row.state == FAILED})
        raise UsageError(f"no failed run matches {key!r} (failed runs: {', '.join(known) or 'none'})")
    for row in failed:
        ledger.update(row, state=SEEN, attempts=0, next_try=0)
        print(f"{row.run_path}: {FAILED} -> {SEEN}; the agent syncs it on its next pass")
    return 0


def results_command(project: Project, args: argparse.Namespace) -> int:
    """reports/results/<run>/, then (--pr) the comment; the GitHub settings and the pull request are checked first."""
    gh = GitHub.from_env(os.environ) if args.pr else None
    if gh is not None:
        gh.pull(args.pr)
    target = resolve(project.root, args.target)
    results, series = collect(project, target)
    folder = write(project, results, series)
    shown = folder.relative_to(project.root) if folder.is_relative_to(project.root) else folder
    print(f"results of {results['run']}: metrics from {results['source']} ({results['source_note']})")
    verdicts = [f"{r['item']} {r['verdict']}" for r in results["sla"] if r["target"] is not None]
    print(f"SLA: {', '.join(verdicts) or results['sla_note'] or 'no target stated'}")
    print(f"wrote {shown}/summary.md, results.json and {len(results['figures'])} figure(s)")
    if gh is not None:
        action, url = publish(gh, args.pr, results, folder, images=not args.no_images, branch=args.branch)
        print(f"{action} the comment on pull request #{args.pr}: {url}")
    return 0


def note(project: Project, args: argparse.Namespace) -> int:
    path, created = notes.write(project, args.target)
    rel = path.relative_to(project.root).as_posix()
    if created:
        print(f"{rel}: written; its conclusions are open until you write them (## Conclusions)")
    else:
        print(f"{rel}: a revision appended; the text above it is kept as it was")
    print(f"{NOTES_INDEX.path}: updated")
    return 0
