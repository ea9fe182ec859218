"""One exception hierarchy for everything Hephaestus rejects, with messages a user can act on.

A `GateError` names the file, the field path inside it, the bad value, what was expected and a
hint, like a jsonschema error. Validators *yield* them so that a run reports every problem at
once; code that must stop raises one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class HephaestusError(Exception):
    """Base of every error Hephaestus raises on purpose."""


class DependencyError(HephaestusError):
    """A Python package the step needs is not importable; the message says what to install."""

    def __init__(self, package: str, purpose: str, install: str):
        self.package, self.purpose, self.install = package, purpose, install
        super().__init__(f"{purpose} needs the Python package '{package}': {install}")


class UsageError(HephaestusError, ValueError):
    """A command line the CLI cannot act on (an unknown stage, say): `error:` and exit 2."""


class RegistryError(HephaestusError, ValueError):
    """A template registry file (hooks/config_renames.yml, say) is malformed: a template bug, named by file and entry."""


@dataclass(eq=True, unsafe_hash=True)  # not frozen: contextlib and `raise` set __traceback__ on it
class GateError(HephaestusError):
    """One failed check: where (file, path), what (value), and what would pass (expected, hint)."""

    file: str
    path: str
    value: Any
    expected: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f" (hint: {self.hint})" if self.hint else ""
        if self.value is None:  # something missing: there is no bad value to show
            return f"{self.file}: {self.path or '<root>'}: missing: expected {self.expected}{hint}"
        value = repr(self.value)
        if len(value) > 80:
            value = value[:77] + "..."
        return f"{self.file}: {self.path or '<root>'}: {value} is invalid: expected {self.expected}{hint}"


class GateWarning(GateError):
    """A finding that does not fail its gate (a note's conclusions left open too long, say): `gates.run` prints it
    as `warning: <the GateError line>` and leaves it out of the errors it returns."""

    def __str__(self) -> str:
        return f"warning: {super().__str__()}"


class PatchError(HephaestusError, ValueError):
    """A diff (from an LLM) was rejected: not a diff, a path outside the project, or it does not apply."""


class DockerError(HephaestusError):
    """A Docker stage (C2, C3) could not go on: what failed, what to do, and the tail of the tool's output."""

    def __init__(self, problem: str, hint: str, output: str = ""):
        self.problem, self.hint, self.output = problem, hint, output
        super().__init__(f"{problem} (hint: {hint})")


class FixError(HephaestusError):
    """A bugfix-loop fix could not be applied (an install failed, say); the attempt fails and is rolled back."""


class DeployFailure(HephaestusError):
    """A fatal failure of the deploy stage (C3): which step, what went wrong, and the output that shows it."""

    def __init__(self, step: str, problem: str, detail: str = ""):
        self.step, self.problem, self.detail = step, problem, detail
        super().__init__(f"{step}: {problem}")


class ClusterError(HephaestusError):
    """A D2 or D4 step could not go on (a scheduler refused a job, a config key is wrong, a credential is
    missing): what failed and what to do. Nothing was submitted unless the message says so."""

    def __init__(self, problem: str, hint: str = ""):
        self.problem, self.hint = problem, hint
        super().__init__(f"{problem} (hint: {hint})" if hint else problem)


class TransientError(ClusterError):
    """A scheduler or platform failed in a way that may pass (a timeout, HTTP 500, a rate limit): the caller
    retries with a bound. `retry_after` is the wait the platform asked for, in seconds, when it said."""

    def __init__(self, problem: str, hint: str = "", retry_after: float | None = None):
        super().__init__(problem, hint)
        self.retry_after = retry_after


class HubError(HephaestusError):
    """A fetch from the Hugging Face hub (or the mirror HF_ENDPOINT names) failed: what, for which repository, and
    what to do (a token, the repo name, a retry). Nothing under weights/ or data/full/ was changed."""

    def __init__(self, problem: str, hint: str = ""):
        self.problem, self.hint = problem, hint
        super().__init__(f"{problem} (hint: {hint})" if hint else problem)
