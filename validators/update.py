"""After `copier update`: what the merge left to resolve, what it must not have touched, and the gates.

copier runs `python -m validators --exit-zero after-update` as its last step of an update
(copier.yml `_migrations`, stage "after"), and `nox -s update_check` runs it again whenever you like:

    python -m validators after-update [--stages A]

1. Conflicts: conflict markers (`copier update --conflict inline`, the default) and `*.rej` files
   (`--conflict rej`), each with its file and line, then the steps to resolve them. While any are
   left the gates are not run: a half-merged file fails them for the wrong reason.
2. Ownership: the project-owned files (`artifacts.PROJECT_OWNED`) must not differ from the last commit; copier
   never writes them, so a difference is yours or a bug, and the report says how to restore it. A
   file a release moved unchanged (`git mv` by the migration, hooks/file_moves.yml) is not a difference.
3. The gates of the chosen stages (A by default: no venv needed), as `python -m validators check`.

`rule_no_conflicts` is also a stage A4 rule (the generation wing lists it), so `nox -s validate`
fails while conflicts remain. The gate table is passed in: the core imports no wing.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from .artifacts import PROJECT_OWNED, SKIP_ANYWHERE, SKIP_AT_ROOT
from .errors import DependencyError, GateError
from .gates import Table, run
from .project import Project

MARKER_START = re.compile(r"^<{7}(?: |$)")
MARKER_END = re.compile(r"^>{7}(?: |$)")
MARKER_HINT = ("keep your lines (under 'before updating') or the template's (under 'after updating') or a mix, "
               "delete the marker lines, then `git add` the file")

NEXT_STEPS = """\
Next steps:
  1. Open each file above. Between '<<<<<<< before updating' and '=======' are your lines; between
     '=======' and '>>>>>>> after updating' are the new template's. Keep what you want and delete
     the three marker lines. For a .rej file, apply its hunks to the file it names by hand and
     delete the .rej file.
  2. Run `nox -s update_check` until it reports no conflicts and the gates pass.
  3. Commit: git add -A && git commit -m "Update from the template"
  To drop the whole update instead: git reset --hard HEAD && git clean -fd (copier starts from a
  clean tree, so everything of yours is in the last commit)."""
DONE_STEPS = """\
Next steps: review the update with `git diff`, run `nox -s validate` for every stage, then commit:
  git add -A && git commit -m "Update from the template\""""


def _text_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        top = Path(folder) == root
        dirs[:] = sorted(d for d in dirs if d not in SKIP_ANYWHERE and not (top and d in SKIP_AT_ROOT))
        for name in sorted(files):
            yield Path(folder) / name


def rule_no_conflicts(project: Project) -> Iterator[GateError]:
    """Every conflict marker block and every .rej file a `copier update` left in the project."""
    root = project.root
    for path in _text_files(root):
        rel = path.relative_to(root).as_posix()
        if rel.endswith(".rej"):
            target = rel[: -len(".rej")]
            yield GateError(rel, "", f"hunks rejected for {target}", "no .rej files left by `copier update`",
                            f"apply these hunks to {target} by hand, then delete {rel}")
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if b"<<<<<<<" not in data or b"\0" in data:  # fast path; binary files hold no merge markers
            continue
        lines = data.decode("utf-8", errors="replace").splitlines()
        for n, line in enumerate(lines, 1):
            if MARKER_START.match(line) and any(MARKER_END.match(later) for later in lines[n:]):
                yield GateError(rel, f"line {n}", line.rstrip(), "no conflict markers left by `copier update`", MARKER_HINT)


def _owned(path: str, owned: tuple[str, ...]) -> bool:
    return any(path == o or path.startswith(o + "/") for o in owned)


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def owned_changes(project: Project, owned: Iterable[str] = PROJECT_OWNED) -> list[str] | None:
    """`git status --short` lines of project-owned paths that differ from the last commit; None without git.

    A pure rename into a project-owned path (staged, content identical: rename score R100, nothing
    changed since) is left out: that is a release's file move (hooks/file_moves.py `git mv`s the old
    path), not a change. A moved file that was also edited is reported, as `RM old -> new` or, once
    staged, `R  old -> new`.
    """
    owned = tuple(owned)
    prefix = _git(project.root, "rev-parse", "--show-prefix")  # the project may be a folder of a larger repository
    # The whole project, not only the owned paths: a pathspec hides the rename's old side (it shows `A`).
    status = _git(project.root, "status", "--porcelain=v2", "-z", "--untracked-files=all", "--", ".")
    if prefix is None or status is None:
        return None
    prefix = prefix.strip()
    fields = iter(status.split("\0"))
    lines = []
    for entry in fields:
        kind, _, rest = entry.partition(" ")
        if kind in ("?", "!"):
            xy, path, orig = kind * 2, rest, None
        elif kind in ("1", "2", "u"):
            parts = rest.split(" ", {"1": 7, "2": 8, "u": 9}[kind])
            xy, path = parts[0].replace(".", " "), parts[-1]
            orig = next(fields, "").removeprefix(prefix) if kind == "2" else None
            if kind == "2" and parts[0] == "R." and parts[7] == "R100":
                if _owned(path.removeprefix(prefix), owned) and not _owned(orig, owned):
                    continue  # moved unchanged into a project-owned path
        else:  # the empty tail after the last NUL
            continue
        path = path.removeprefix(prefix)
        if _owned(path, owned) or (orig is not None and _owned(orig, owned)):
            lines.append(f"{xy} {orig} -> {path}" if orig is not None else f"{xy} {path}")
    return lines


def after_update(project: Project, stages: list[str], table: Table) -> int:
    """Print the report; 0 when there are no conflicts and every gate of `stages` passes, else 1."""
    conflicts = list(rule_no_conflicts(project))
    changed = owned_changes(project)
    if changed:
        print("after-update: project-owned files differ from the last commit (copier never writes them; "
              "if you did not change them, restore them with `git checkout HEAD -- <path>`):")
        print("\n".join(f"  {line}" for line in changed))
    elif changed == []:
        print("after-update: project-owned files unchanged (documents, reports, data/mini)")
    if conflicts:
        print(f"after-update: the update left {len(conflicts)} conflict(s) to resolve:")
        print("\n".join(f"  {error}" for error in conflicts))
        print(NEXT_STEPS)
        print(f"after-update: gates not run (stages {' '.join(stages)}): resolve the conflicts first")
        return 1
    print("after-update: no conflicts (no conflict markers, no .rej files)")
    try:
        errors = run(project, stages, table)
    except DependencyError as err:  # copier's own Python: the gates need the project venv
        print(f"after-update: gates not run in this Python ({err}); run `nox -s update_check` in the project")
        print(DONE_STEPS)
        return 1 if changed else 0
    for error in errors:
        print(f"  {error}")
    label = " ".join(stages)
    print(f"after-update: {len(errors)} error(s) in stages {label}" if errors else f"after-update: stages {label}: all gates pass")
    print(DONE_STEPS)
    return 1 if errors or changed else 0
