"""The command line of stages D1 and D5 (`python -m validators <command>`; nox sessions run them)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add the D1 and D5 subcommands to the validators' argument parser."""
