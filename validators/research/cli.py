"""The command line of stages B1, B2 and B4 (`python -m validators <command>`; nox sessions run them).

    rules [--inherit]            B1: CLAUDE.local.md (customised) or CLAUDE.inherited.md
    env-check --env debug-cpu    B2: env_check_report.md, mini_dataset.md, the notebook run headless
    guidance                     B4: full_train_guidance.md and scripts/launch_*.sh
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..artifacts import CLAUDE, ENV_CHECK, GUIDANCE, MINI_DATASET
from ..pins import ENVIRONMENTS
from ..project import Project


def register(sub: Any) -> None:
    rules = sub.add_parser("rules", help="decide on CLAUDE.md's rules (stage B1)")
    rules.add_argument("--inherit", action="store_true", help="accept the rules as they are, without questions (CI)")
    rules.set_defaults(handler=decide)
    env = sub.add_parser("env-check", help=f"write {ENV_CHECK} and {MINI_DATASET}, run the notebook (B2)")
    env.add_argument("--env", choices=list(ENVIRONMENTS), required=True)
    env.set_defaults(handler=env_check)
    sub.add_parser("guidance", help=f"write {GUIDANCE} and the launch scripts (stage B4)").set_defaults(handler=guidance)


def ask_rules(rules: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
    import questionary

    out = []
    for title, text in rules:
        new = questionary.text(f"{title}: {text}\n  new wording (Enter keeps it):").unsafe_ask()
        out.append((title, new.strip() or None))
    return out


def decide(project: Project, args: argparse.Namespace) -> int:
    from .rules import claude_rules, decide_rules

    source = project.read(CLAUDE.path) or ""
    for n, (title, text) in enumerate(claude_rules(source), 1):
        print(f"{n:2d}. {title}: {text}")
    choice = "inherit"
    if not args.inherit and sys.stdin.isatty():
        import questionary

        choice = questionary.select("Customise these rules or inherit them?", choices=["inherit", "customise"]).unsafe_ask()
    written = decide_rules(project, inherit=choice == "inherit", ask=ask_rules if choice == "customise" else None)
    print(f"wrote {written}")
    return 0


def env_check(project: Project, args: argparse.Namespace) -> int:
    from .env_report import write_env_report
    from .mini_report import write_mini_report
    from .notebook import execute

    report = write_env_report(project, args.env)
    mini = write_mini_report(project)
    figures = execute(project)
    print(f"{ENV_CHECK}: Python {report['python_version']}, torch {report['torch']['version']}, GPU {report['gpu']}")
    print(f"{MINI_DATASET}: {mini['samples']} samples; notebook figures: {', '.join(figures)}")
    return 0


def guidance(project: Project, args: argparse.Namespace) -> int:
    from .guidance import write

    data = write(project)
    b = data["batch_size"]
    print(f"{GUIDANCE}: batch {b['min']}-{b['max']} (recommended {b['recommended']}), "
          f"{data['estimates']['train_memory_gb']} GB, {data['estimates']['train_hours']} h on {data['hardware']['name']}; "
          f"scripts: {', '.join(data['distributed']['scripts'].values())}")
    return 0
