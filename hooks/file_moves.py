"""Move the files a release relocated (registry hooks/file_moves.yml); hooks/migrations.py runs it.

Every move with from < version <= to is applied: `git mv` when the old path is tracked (its history
follows: `git log --follow`), a plain rename when not, parent folders created. A missing old path
is skipped silently; an existing new path is never overwritten (reported "by hand": copier may have
written the template's file there). File contents are never touched, and a second run finds
nothing left to move.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml
from packaging.version import InvalidVersion, Version

from validators.errors import RegistryError

REGISTRY = Path(__file__).resolve().parent / "file_moves.yml"
MOVE_KEYS = {"version", "old", "new", "why"}
NOTE_KEYS = {"version", "note"}
GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Move:
    """One project file (or glob of files) moved by one release."""

    version: Version  # the release that moved it
    old: str  # path relative to the project root; a glob in its last part
    new: str  # the new path, or a folder ending in '/' (the file keeps its name)
    why: str  # one line for the researcher

    def target(self, old: str) -> str:
        """Where the file at `old` (a match of `self.old`) goes."""
        return self.new + PurePosixPath(old).name if self.new.endswith("/") else self.new


@dataclass(frozen=True)
class Note:
    """A line printed once when its release is crossed: what the release changed but did not move."""

    version: Version
    note: str


def _version(value: object, where: str) -> Version:
    try:
        return Version(str(value))
    except InvalidVersion as err:
        raise RegistryError(f"{where}.version: {value!r} is not a PEP 440 version such as '1.0.0'") from err


def _inside(value: object, where: str, example: str) -> str:
    path = str(value)
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or "\\" in path or ".." in parts:
        raise RegistryError(f"{where}: {value!r} must be a path inside the project, e.g. {example!r}")
    return path


def _closed(entry: object, keys: set[str], where: str) -> dict:
    if not isinstance(entry, dict) or set(entry) != keys:
        got = sorted(entry) if isinstance(entry, dict) else entry
        raise RegistryError(f"{where}: keys {got}: expected exactly {sorted(keys)}")
    return entry


def load_registry(path: Path = REGISTRY) -> tuple[list[Move], list[Note]]:
    """Every move and note of the registry, checked: closed keys, PEP 440 versions, paths inside the project."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not set(data) <= {"moves", "notes"}:
        raise RegistryError(f"{path.name}: top-level keys {sorted(data) if isinstance(data, dict) else data!r}: "
                            "expected 'moves' and 'notes'")
    moves = []
    for i, entry in enumerate(data.get("moves") or []):
        where = f"{path.name}: moves[{i}]"
        entry = _closed(entry, MOVE_KEYS, where)
        version = _version(entry["version"], where)
        old = _inside(entry["old"], f"{where}.old", "requirements.md")
        new = _inside(entry["new"], f"{where}.new", "docs/plan/requirements.md")
        if GLOB.search(str(PurePosixPath(old).parent)) or GLOB.search(new):
            raise RegistryError(f"{where}: {old!r} -> {new!r}: a glob may only be in the last part of 'old'")
        if GLOB.search(old) and not new.endswith("/"):
            raise RegistryError(f"{where}.new: {new!r}: the files of the glob {old!r} move into a folder: end it with '/'")
        if old.endswith("/") or Move(version, old, new, "").target(old) == old:
            raise RegistryError(f"{where}: {old!r} -> {new!r}: 'old' must name a file and 'new' another path")
        moves.append(Move(version, old, new, str(entry["why"])))
    notes = []
    for i, entry in enumerate(data.get("notes") or []):
        where = f"{path.name}: notes[{i}]"
        entry = _closed(entry, NOTE_KEYS, where)
        notes.append(Note(_version(entry["version"], where), str(entry["note"])))
    return moves, notes


def select(items: list, version_from: Version, version_to: Version) -> list:
    """The moves (or notes) released after `version_from`, up to and including `version_to`, oldest first."""
    return sorted((m for m in items if version_from < m.version <= version_to), key=lambda m: m.version)


def _git(project: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "--literal-pathspecs", *args], cwd=project, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _tracked(project: Path, rel: str) -> bool:
    result = _git(project, "ls-files", "--error-unmatch", "--", rel)
    return result is not None and result.returncode == 0


def move_file(project: Path, old: str, new: str) -> str | None:
    """Move `old` to `new` inside `project`; None when done, else the problem."""
    target = project / new
    if os.path.lexists(target):
        return f"{new} exists: keep one of the two and delete the other ({new} is where this release looks)"
    target.parent.mkdir(parents=True, exist_ok=True)
    if _tracked(project, old):
        result = _git(project, "mv", "--", old, new)
        if result is None or result.returncode != 0:
            why = (result.stderr.strip().splitlines() or ["?"])[-1] if result is not None else "git did not run"
            return f"`git mv {old} {new}` failed: {why}"
    else:
        (project / old).rename(target)
    return None


def apply(project: Path, moves: list[Move]) -> tuple[list[str], list[str]]:
    """Apply `moves` to the project's files: (moves done, problems), one line each for the researcher."""
    done, problems = [], []
    for move in moves:
        olds = sorted(project.glob(move.old)) if GLOB.search(move.old) else [project / move.old]
        for path in olds:
            old = path.relative_to(project).as_posix()
            if not path.is_file():  # missing: nothing to move (copier removed it, or it was never written)
                if path.is_dir():
                    problems.append(f"{old}: a folder, not moved: move what it holds to {move.target(old)} yourself")
                continue
            new = move.target(old)
            problem = move_file(project, old, new)
            if problem:
                problems.append(f"{old}: not moved to {new}: {problem}")
            else:
                done.append(f"{old} -> {new} ({move.version}: {move.why})")
    return done, problems
