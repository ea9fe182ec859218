"""Unified diffs from an untrusted source: parse, confine to the project's files, apply strictly.

    patches = parse(diff_text)                 # PatchError when it is not a unified diff
    check_paths(project, patches)                # PatchError for a path outside the project's files
    apply(project, patches)                     # PatchError when a hunk's context is not in the file

A path is accepted only if it is relative, has no '..', and names a file of the project
(`Project.files`: code, configs, tests, requirement files; never .git, venvs, data or run
outputs) or a new file under src/, scripts/, configs/ or tests/. Hunks must match the file's
current lines exactly (at the stated line or elsewhere in the file); nothing is fuzzed. Callers
apply on a `TreeCheckpoint` and restore it when `apply` raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import PatchError
from ..project import Project

NEW_FILE_DIRS = ("src", "scripts", "configs", "tests")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    old_start: int
    old: list[str] = field(default_factory=list)   # context and removed lines, in order
    new: list[str] = field(default_factory=list)   # context and added lines, in order


@dataclass
class FilePatch:
    old_path: str | None   # None: the diff creates the file
    new_path: str | None   # None: the diff deletes the file
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return str(self.new_path or self.old_path)


def _strip(name: str) -> str | None:
    name = name.split("\t")[0].strip()
    if name == "/dev/null":
        return None
    return name[2:] if name.startswith(("a/", "b/")) else name


def extract(text: str) -> str:
    """The diff inside a reply: the first ```diff fenced block, else the text from the first '--- '."""
    fenced = re.search(r"```(?:diff|patch)?\s*\n(.*?)```", text, re.DOTALL)
    if fenced:
        return fenced.group(1)
    start = text.find("--- ")
    return text[start:] if start >= 0 else text


def parse(text: str) -> list[FilePatch]:
    lines = extract(text).splitlines()
    patches: list[FilePatch] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            patches.append(FilePatch(_strip(lines[i][4:]), _strip(lines[i + 1][4:])))
            i += 2
            continue
        m = HUNK.match(lines[i])
        if m and patches:
            hunk = Hunk(int(m.group(1)))
            old_left, new_left = int(m.group(2) or 1), int(m.group(4) or 1)
            i += 1
            while i < len(lines) and (old_left > 0 or new_left > 0):
                line = lines[i]
                tag, body = (line[:1], line[1:]) if line else (" ", "")
                if tag == "\\":
                    i += 1
                    continue
                if tag not in " -+":
                    raise PatchError(f"hunk at line {hunk.old_start} of {patches[-1].path} is cut short or malformed: {line[:80]!r}")
                if tag in " -":
                    hunk.old.append(body)
                    old_left -= 1
                if tag in " +":
                    hunk.new.append(body)
                    new_left -= 1
                i += 1
            patches[-1].hunks.append(hunk)
            continue
        i += 1
    if not patches or not any(p.hunks for p in patches):
        raise PatchError("the reply holds no unified diff (expected '--- a/<path>', '+++ b/<path>' and '@@' hunks)")
    return patches


def check_paths(project: Project, patches: list[FilePatch]) -> None:
    """PatchError naming the first path that is not one of the project's own files."""
    root = project.root
    allowed = set(project.files())
    for patch in patches:
        for name in {patch.old_path, patch.new_path} - {None}:
            pure = PurePosixPath(str(name))
            inside = (root / pure).resolve().is_relative_to(root.resolve())
            if pure.is_absolute() or ".." in pure.parts or not inside:
                raise PatchError(f"the diff touches {name!r}, outside the project: rejected")
            new_ok = patch.old_path is None and pure.parts[0] in NEW_FILE_DIRS and not (root / pure).exists()
            if str(pure) not in allowed and not new_ok:
                raise PatchError(f"the diff touches {name!r}, which is not one of the project's files "
                                 "(code, configs, tests, requirement files): rejected")


def _find(lines: list[str], old: list[str], start: int) -> int | None:
    """Where `old` occurs in `lines`: at `start` if it does, else the nearest occurrence."""
    hits = [i for i in range(len(lines) - len(old) + 1) if lines[i:i + len(old)] == old]
    return min(hits, key=lambda i: abs(i - start)) if hits else None


def apply(project: Project, patches: list[FilePatch]) -> list[str]:
    """Apply every file patch; returns the paths written. PatchError when a hunk does not match."""
    root = project.root
    written = []
    for patch in patches:
        target = root / patch.path
        if patch.new_path is None:
            (root / str(patch.old_path)).unlink()
            written.append(str(patch.old_path))
            continue
        text = "" if patch.old_path is None else (root / patch.old_path).read_text(encoding="utf-8")
        lines = text.splitlines()
        offset = 0
        for hunk in patch.hunks:
            at = _find(lines, hunk.old, max(hunk.old_start - 1 + offset, 0)) if hunk.old else len(lines)
            if at is None:
                raise PatchError(f"the diff does not apply: hunk at line {hunk.old_start} of {patch.path} "
                                 "does not match the file")
            lines[at:at + len(hunk.old)] = hunk.new
            offset += len(hunk.new) - len(hunk.old)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        written.append(patch.path)
    return written
