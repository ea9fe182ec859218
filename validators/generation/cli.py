"""The command line of stages A3-A4 (`python -m validators <command>`; copier's copy task and nox run them).

    build-log [--if-missing]     A3: PROJECT_BUILD_LOG.md, each task's checks run
    review [--if-missing]        A4: REVIEW_REPORT.md
    reports [--if-missing]       A3 then A4 in one process (each task check runs once)
    finish-setup                 after `nox -s setup`, in the project venv: the A1-A3 documents' schema,
                                 tech.md's pending figures measured, then the A3-A4 reports if missing
"""

from __future__ import annotations

import argparse
from typing import Any

from ..artifacts import BUILD_LOG, REVIEW
from ..project import Project

WRITES = {"build-log": [BUILD_LOG.path], "review": [REVIEW.path], "reports": [BUILD_LOG.path, REVIEW.path]}


def register(sub: Any) -> None:
    helps = {"build-log": f"write {BUILD_LOG} (stage A3)", "review": f"write {REVIEW} (stage A4)",
             "reports": "build-log then review, each task check run once"}
    for name, text in helps.items():
        parser = sub.add_parser(name, help=text)
        # copier's copy task: `copier recopy` keeps the project-owned reports
        parser.add_argument("--if-missing", action="store_true", help="keep the report(s) if they exist")
        parser.set_defaults(handler=reports)
    finish = sub.add_parser("finish-setup", help="in the project venv: measure tech.md's pending figures, "
                            "then write the A3-A4 reports if missing")
    finish.set_defaults(handler=finish_setup, if_missing=True)


def finish_setup(project: Project, args: argparse.Namespace) -> int:
    """What copy time leaves to the project venv; each part says what it did."""
    from ..artifacts import REQUIREMENTS, TASK, TECH
    from .measured import fill

    errors = [e for doc in (REQUIREMENTS, TASK, TECH) for e in project.validated(doc.path, doc.schema)[1]]
    for error in errors:
        print(f"error: {error}")
    if errors:
        print("setup: the planning documents do not satisfy their schemas: fix them, or rewrite them with "
              "`nox -s plan -- --force`")
        return 1
    measured = fill(project)
    print(f"setup: measured {', '.join(measured)} in this venv into {TECH}" if measured
          else f"setup: {TECH} is measured already")
    args.command = "reports"
    return reports(project, args)


def reports(project: Project, args: argparse.Namespace) -> int:
    names = WRITES[args.command]
    if args.if_missing and all(project.path(name).exists() for name in names):
        print(f"kept the existing {' and '.join(names)} (project-owned; `nox -s review` rewrites "
              f"{'them' if len(names) > 1 else 'it'})")
        return 0
    if args.command in ("build-log", "reports"):
        from .build_log import write

        log = write(project)
        failed = [e["task"] for e in log["entries"] if e["result"] != "done"]
        print(f"{BUILD_LOG}: {len(log['entries'])} tasks, failed: {', '.join(failed) or 'none'}")
        if args.command == "build-log":
            return 1 if failed else 0
    from .review import write as write_review

    report = write_review(project)
    for item in report["items"]:
        print(f"{'pass' if item['passed'] else 'FAIL'}  {item['title']}")
        if not item["passed"]:
            print("      " + "\n      ".join(item["evidence"]))
    return 0 if report["passed"] else 1
