"""The command line of stages D2 and D4 (`python -m validators <command>`; nox sessions run them)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add the D2 and D4 subcommands to the validators' argument parser."""
