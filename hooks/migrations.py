"""Carry moved files and renamed config keys into a project during `copier update` (copier.yml `_migrations`).

Run by copier after the merge, from the project folder, with the two release tags:

    python <template>/hooks/migrations.py --from 1.0.0 --to 1.1.0 [--project .]

First the files a release moved (hooks/file_moves.yml, applied by hooks/file_moves.py: `git mv`
when tracked, never over an existing file), so that the renames find the files where they now live.
Then every entry of hooks/config_renames.yml with from < version <= to is applied to the files its glob
matches. The rename is line-based, so comments, values, key order and conflict markers are kept: a
key inside a conflict block is renamed on both sides, leaving the researcher only the values to
choose. It is idempotent (a key already renamed is not found again) and touches nothing outside the
project. Problems (both names present, a file that is not YAML) are reported, never fixed silently;
they do not abort the update: `python -m validators after-update` runs next and reports the gates.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the template root: hooks/, validators/

import yaml  # noqa: E402
from packaging.version import InvalidVersion, Version  # noqa: E402

from hooks import file_moves  # noqa: E402
from validators.errors import RegistryError  # noqa: E402

REGISTRY = Path(__file__).resolve().parent / "config_renames.yml"
ENTRY_KEYS = {"version", "files", "old", "new", "why"}
# `key:` at the start of a line, after indentation; a quoted key or a list item is not a config key here.
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_-]*)\s*:(?=\s|$)")
CONFLICT_MARKER = re.compile(r"^(<{7}|\|{7}|={7}|>{7})( |$)")
COMMENT_GAP = re.compile(r"(?<=\S)( {2,})(?=#)")


@dataclass(frozen=True)
class Rename:
    """One config key renamed by one release."""

    version: Version  # the release that renamed it
    files: str  # glob relative to the project root
    old: str  # dotted key path before
    new: str  # dotted key path after (same parent)
    why: str  # one line for the researcher

    @property
    def new_leaf(self) -> str:
        return self.new.rsplit(".", 1)[-1]


def load_registry(path: Path = REGISTRY) -> list[Rename]:
    """Every entry of the registry, checked: closed keys, PEP 440 version, safe glob, same-parent rename."""
    entries = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("renames") or []
    renames = []
    for i, entry in enumerate(entries):
        where = f"{path.name}: renames[{i}]"
        if not isinstance(entry, dict) or set(entry) != ENTRY_KEYS:
            got = sorted(entry) if isinstance(entry, dict) else entry
            raise RegistryError(f"{where}: keys {got}: expected exactly {sorted(ENTRY_KEYS)}")
        try:
            version = Version(str(entry["version"]))
        except InvalidVersion as err:
            raise RegistryError(f"{where}.version: {entry['version']!r} is not a PEP 440 version such as '1.1.0'") from err
        glob = PurePosixPath(str(entry["files"]))
        if glob.is_absolute() or ".." in glob.parts:
            raise RegistryError(f"{where}.files: {entry['files']!r} must be a glob inside the project, e.g. 'configs/trainer/*.yaml'")
        old, new = str(entry["old"]), str(entry["new"])
        if old.split(".")[:-1] != new.split(".")[:-1] or old == new:
            raise RegistryError(f"{where}: {old!r} -> {new!r}: only the last part of the dotted key may change")
        renames.append(Rename(version, str(glob), old, new, str(entry["why"])))
    return renames


def select(renames: list[Rename], version_from: Version, version_to: Version) -> list[Rename]:
    """The renames released after `version_from`, up to and including `version_to`, oldest first."""
    return sorted((r for r in renames if version_from < r.version <= version_to), key=lambda r: r.version)


def _key_lines(text: str) -> list[tuple[int, list[str], str, re.Match[str]]]:
    """(line index, dotted key path, side, match) of every block-mapping key line.

    `side` is "" outside a conflict block, else "ours", "base" or "theirs" (git's markers
    <<<<<<<, |||||||, =======, >>>>>>>): each side of a block continues the mapping before it.
    """
    out = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the mappings the current line is inside
    side, saved = "", []
    for n, line in enumerate(text.splitlines(keepends=True)):
        marker = CONFLICT_MARKER.match(line)
        if marker and (marker[1][0] == "<" or side):
            side, stack, saved = {"<": ("ours", stack, list(stack)), "|": ("base", list(saved), saved),
                                  "=": ("theirs", list(saved), saved), ">": ("", stack, [])}[marker[1][0]]
            continue
        match = KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [key for _, key in stack] + [match["key"]]
        out.append((n, path, side, match))
        stack.append((indent, match["key"]))
    return out


def _renamed(line: str, match: re.Match[str], leaf: str) -> str:
    """`line` with its key replaced by `leaf`; an aligned trailing comment keeps its column where it can."""
    start, end = match.span("key")
    rest = line[end:]
    delta = len(leaf) - (end - start)
    gap = COMMENT_GAP.search(rest)
    if gap and delta:
        width = max(1, len(gap.group(1)) - delta)
        rest = rest[: gap.start(1)] + " " * width + rest[gap.end(1):]
    return line[:start] + leaf + rest


def rename_key(text: str, rename: Rename) -> tuple[str, int, str | None]:
    """(new text, keys renamed, problem or None). A mapping that has both names is left as it is."""
    lines = text.splitlines(keepends=True)
    keys = _key_lines(text)
    old_path, new_path = rename.old.split("."), rename.new.split(".")
    for view in ("ours", "base", "theirs"):  # each version of the file the conflict markers hold
        paths = [path for _, path, side, _ in keys if side in ("", view)]
        if old_path in paths and new_path in paths:
            return text, 0, f"both '{rename.old}' and '{rename.new}' are present: keep one (the value you want) under '{rename.new}'"
    count = 0
    for n, path, _side, match in keys:
        if path == old_path:
            lines[n] = _renamed(lines[n], match, rename.new_leaf)
            count += 1
    return "".join(lines), count, None


def apply(project: Path, renames: list[Rename]) -> tuple[list[str], list[str]]:
    """Apply `renames` to the project's files: (changes, problems), one line each for the researcher."""
    changes, problems = [], []
    for rename in renames:
        for path in sorted(project.glob(rename.files)):
            rel = path.relative_to(project).as_posix()
            if not path.is_file() or ".." in Path(rel).parts:
                continue
            text = path.read_text(encoding="utf-8")
            new_text, count, problem = rename_key(text, rename)
            if problem:
                problems.append(f"{rel}: {problem}")
                continue
            if count:
                path.write_text(new_text, encoding="utf-8")
                changes.append(f"{rel}: {rename.old} -> {rename.new} ({rename.version}: {rename.why})")
                if not any(CONFLICT_MARKER.match(line) for line in new_text.splitlines()):
                    try:
                        yaml.safe_load(new_text)
                    except yaml.YAMLError as err:
                        problems.append(f"{rel}: not valid YAML after the rename: {str(err).splitlines()[0]}")
    return changes, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="version_from", required=True, help="the project's release before the update")
    parser.add_argument("--to", dest="version_to", required=True, help="the release the project updates to")
    parser.add_argument("--project", type=Path, default=Path("."), help="the generated project's root")
    parser.add_argument("--registry", type=Path, default=REGISTRY, help=argparse.SUPPRESS)
    parser.add_argument("--moves", type=Path, default=file_moves.REGISTRY, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        version_from, version_to = Version(args.version_from), Version(args.version_to)
        moves, notes = (file_moves.select(items, version_from, version_to) for items in file_moves.load_registry(args.moves))
        renames = select(load_registry(args.registry), version_from, version_to)
    except (InvalidVersion, RegistryError) as err:
        print(f"migrations: error: {err}", file=sys.stderr)
        return 1
    project = args.project.resolve()
    span = f"{version_from} -> {version_to}"
    if moves:  # before the renames: a renamed key may live in a moved file
        moved, problems = file_moves.apply(project, moves)
        report("moved", moved, problems, f"{span}: {len(moves)} move(s) due, {len(moved)} file(s) moved")
    for note in notes:
        print(f"migrations: {note.version}: {note.note}")
    changes, problems = apply(project, renames)
    report("renamed", changes, problems, f"{span}: {len(renames)} rename(s) due, {len(changes)} file change(s)")
    return 0


def report(verb: str, done: list[str], problems: list[str], totals: str) -> None:
    """One line per change made and per problem left for the researcher, then the totals."""
    for line in done:
        print(f"migrations: {verb} {line}")
    for line in problems:
        print(f"migrations: by hand: {line}")
    print(f"migrations: {totals}, {len(problems)} left for you")


if __name__ == "__main__":
    sys.exit(main())
