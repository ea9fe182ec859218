"""One exception hierarchy for the project: catch `ProjectError` to handle any of them.

Each subclass also inherits the matching builtin, and builds its message from keyword
arguments so that every error names the file, the field, the bad value and what to do.
"""

from __future__ import annotations

from typing import Any


class ProjectError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(ProjectError, ValueError):
    """A config file or command-line override is invalid."""

    def __init__(self, *, file: str, key: str, value: Any = None, expected: str, hint: str = "") -> None:
        self.file, self.key, self.value, self.expected, self.hint = file, key, value, expected, hint
        message = f"{file}: {key}: {value!r} {expected}" if value is not None else f"{file}: {key}: {expected}"
        super().__init__(f"{message}" + (f" (hint: {hint})" if hint else ""))


class DataError(ProjectError, ValueError):
    """The data on disk does not match what the config says."""

    def __init__(self, *, path: str, problem: str, hint: str = "") -> None:
        self.path, self.problem, self.hint = path, problem, hint
        super().__init__(f"{path}: {problem}" + (f" (hint: {hint})" if hint else ""))


class CheckpointError(ProjectError, ValueError):
    """A checkpoint cannot be used for inference."""

    def __init__(self, *, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")
