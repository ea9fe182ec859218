"""The command line of stages D2 and D4 (`python -m validators <command>`; nox sessions run them).

    cluster-venv   D2: build .venv for the cluster jobs: relocatable, cache-free, in the job's image
    venv-check     D2: the interpreter the nodes need, then every reason the .venv would break after a move
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..pins import ENVIRONMENTS
from ..project import Project


def register(sub: Any) -> None:
    """Add the D2 and D4 subcommands to the validators' argument parser."""
    register_venv(sub)


def register_venv(sub: Any) -> None:
    build = sub.add_parser("cluster-venv", help="build .venv for the cluster jobs: relocatable, cache-free, in the job's image (D2)")
    build.add_argument("--image", default=os.environ.get("CLUSTER_IMAGE") or None,
                       help="build inside this image, whose interpreter the nodes run (default: $CLUSTER_IMAGE; "
                            "none: the host's interpreter)")
    build.add_argument("--env", choices=list(ENVIRONMENTS), help="the requirement file (default: $PROJECT_ENV, else the accelerator's)")
    build.add_argument("--force", action="store_true", help="rebuild even when the .venv is up to date")
    build.set_defaults(handler=cluster_venv)
    check = sub.add_parser("venv-check", help="check .venv: no absolute build paths, no editable install, no drift (D2)")
    check.set_defaults(handler=venv_check)


def cluster_venv(project: Project, args: argparse.Namespace) -> int:
    from .venv_build import build, default_env

    build(project, args.env or default_env(project), args.image or None, force=args.force)
    return 0


def venv_check(project: Project, args: argparse.Namespace) -> int:
    from ..artifacts import CLUSTER_VENV
    from .venv_check import notes, rule_cluster_venv

    for line in notes(project):
        print(line)
    errors = list(rule_cluster_venv(project))
    for error in errors:
        print(error)
    print(f"{CLUSTER_VENV.path}: {len(errors)} error(s)" if errors else f"{CLUSTER_VENV.path}: relocatable, no path of the "
          "build, matches its requirement file")
    return 1 if errors else 0
