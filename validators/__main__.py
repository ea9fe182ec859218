"""Command line of the validators (run from a generated project's root, usually through nox).

    python -m validators check [--stages A B1 B2]    # every gate error, then exit 1 if any
    python -m validators after-update [--stages A]   # after `copier update`: conflicts, ownership, then the gates
    python -m validators reports | build-log | review                   # A3-A4 (generation/cli.py)
    python -m validators rules | env-check | guidance                   # B1, B2, B4 (research/cli.py)
    python -m validators bugfix [--attempts 4]                          # B3 (bugfix/cli.py)
    python -m validators docker-env | docker-base | wheelhouse | docker-build | container-check | deploy  # C1-C3
    python -m validators monitor [--url URL]                            # C4 (monitoring/cli.py)
    python -m validators fetch-weights | fetch-data | weights-check     # the hub: weights/, data/full/ (hub/cli.py)
    python -m validators cluster-venv | venv-check                      # D2 (cluster/cli.py)
    python -m validators submit | job status|wait|logs|cancel ID | jobs # D4 (cluster/cli.py)
    python -m validators sync-agent --watch DIR | sync-agent status|retry  # D5 (tracking/cli.py)

This module only mounts the wings' commands and the two core ones. A mistake on the command line
prints one `error:` line and exits 2; a stage that fails prints `error:` and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from . import gates
from .bugfix import cli as bugfix_cli
from .cluster import cli as cluster_cli
from .docker import cli as docker_cli
from .errors import HephaestusError, UsageError
from .generation import cli as generation_cli
from .hub import cli as hub_cli
from .monitoring import cli as monitoring_cli
from .project import Project
from .research import cli as research_cli
from .tracking import cli as tracking_cli

WINGS = (generation_cli, research_cli, bugfix_cli, docker_cli, monitoring_cli, hub_cli, cluster_cli, tracking_cli)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one `error:` line (with where to look), exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def table() -> dict[str, list[gates.Rule]]:
    """The stage -> rules table, merged from the wings (imported here, never by the core)."""
    from . import bugfix, cluster, docker, generation, monitoring, research, tracking

    return gates.merge(generation.GATES, research.GATES, bugfix.GATES, docker.GATES, monitoring.GATES, cluster.GATES,
                       tracking.GATES)


def check(project: Project, args: argparse.Namespace) -> int:
    errors = gates.run(project, args.stages, table())
    for error in errors:
        print(error)
    label = " ".join(args.stages)
    print(f"{len(errors)} error(s) in stages {label}" if errors else f"stages {label}: all gates pass")
    return 1 if errors else 0


def after_update(project: Project, args: argparse.Namespace) -> int:
    from .update import after_update

    return after_update(project, args.stages, table())


def parser() -> Parser:
    top = Parser(prog="python -m validators", description=__doc__.splitlines()[0])
    top.add_argument("--project", type=Path, default=Path("."), help="the generated project's root")
    top.set_defaults(gate_table=table)  # the merged gates, for a wing's command that runs them (submit)
    top.add_argument("--exit-zero", action="store_true", help="report, but exit 0 (copier hooks: never abort a copy)")
    sub = top.add_subparsers(dest="command", required=True, parser_class=Parser)
    stages = "A, B, C, or single stages like A2 B1"
    p = sub.add_parser("check", help="run the stage gates and print every error")
    p.add_argument("--stages", nargs="+", default=["A"], help=f"{stages} (default: A)")
    p.set_defaults(handler=check)
    p = sub.add_parser("after-update", help="after `copier update`: list conflicts with next steps, then run the gates")
    p.add_argument("--stages", nargs="+", default=["A"], help=f"stages to check when no conflict is left ({stages}; default: A)")
    p.set_defaults(handler=after_update)
    for wing in WINGS:
        wing.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code = args.handler(Project(args.project.resolve()), args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except HephaestusError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 1
    return 0 if args.exit_zero else code


if __name__ == "__main__":
    sys.exit(main())
