"""Comment-preserving edits of a generated project's YAML configs (what the bugfix catalog changes).

The configs are composed like `load_config` does: configs/train.yaml picks one file per group
(`defaults.<group>`), the group file holds the group's keys, and train.yaml's own sections
(`optim`, `checkpoint`, ...) override them. `source_of("trainer.precision")` says which file a fix
must edit so that the composed value changes; `set_key` rewrites one line in place and keeps its
comment, so the researcher's file stays readable and the diff is one line.

    edit = ConfigEdit(project)
    path = edit.set_key("data.batch_size", 256)     # -> Path("configs/data/mini.yaml")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .project import Project

GROUPS = ("data", "model", "trainer", "logger")
ROOT_FILE = Path("configs/train.yaml")
LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w-]*):(?P<value>[^#\n]*?)(?P<pad>\s*)(?P<comment>#.*)?$")


def yaml_scalar(value: Any) -> str:
    """One YAML scalar as the configs write it (null, true, 0.001, text)."""
    if isinstance(value, float):
        return repr(value) if "e" not in repr(value) else f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e+")
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


@dataclass
class ConfigEdit:
    project: Project

    @property
    def root(self) -> Path:
        return self.project.root

    def load(self, rel: Path) -> dict[str, Any]:
        path = self.root / rel
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}

    def choice(self, group: str) -> str:
        """The file train.yaml picks for `group` (configs/<group>/<choice>.yaml)."""
        return str((self.load(ROOT_FILE).get("defaults") or {}).get(group, ""))

    def group_file(self, group: str) -> Path:
        return Path("configs") / group / f"{self.choice(group)}.yaml"

    def source_of(self, key: str) -> Path:
        """The file whose line decides the composed value of dotted `key` (where a fix must edit)."""
        head, _, rest = key.partition(".")
        root = self.load(ROOT_FILE)
        if isinstance(root.get(head), dict) and rest in root[head]:
            return ROOT_FILE  # train.yaml's sections are merged last: they win
        if head in GROUPS and rest:
            return self.group_file(head)
        return ROOT_FILE

    def value(self, key: str) -> Any:
        """The value `key` has in its source file (None when the file does not set it)."""
        head, _, rest = key.partition(".")
        rel = self.source_of(key)
        data = self.load(rel)
        if rel != ROOT_FILE:
            return data.get(rest)
        node = data.get(head) if rest else data.get(head)
        return node.get(rest) if rest and isinstance(node, dict) else (None if rest else node)

    def set_key(self, key: str, value: Any) -> Path:
        """Set dotted `key` to `value` in its source file, keeping the line's comment; returns the file."""
        rel = self.source_of(key)
        head, _, rest = key.partition(".")
        path = [head, rest] if rel == ROOT_FILE and rest else [rest or head]
        set_line(self.root / rel, path, yaml_scalar(value))
        return rel

    def set_choice(self, group: str, choice: str) -> Path:
        set_line(self.root / ROOT_FILE, ["defaults", group], choice)
        return ROOT_FILE

    def rename_key(self, rel: Path, path: list[str], new: str) -> None:
        """Rename the key at `path` (e.g. ["optim", "wieght_decay"]) in `rel`, keeping value and comment."""
        file = self.root / rel
        lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
        index = find_line(lines, path)
        if index is None:
            raise KeyError(f"{rel}: no key {'.'.join(path)}")
        lines[index] = re.sub(rf"^(\s*){re.escape(path[-1])}:", lambda m: f"{m.group(1)}{new}:", lines[index], count=1)
        file.write_text("".join(lines), encoding="utf-8")


def find_line(lines: list[str], path: list[str]) -> int | None:
    """Index of the line that sets `path` (one key per nesting level, by indentation)."""
    depth, parent_indent, start = 0, -1, 0
    for i in range(start, len(lines)):
        m = LINE.match(lines[i].rstrip("\n"))
        if not m:
            continue
        indent = len(m.group("indent"))
        if indent <= parent_indent:
            return None  # left the parent section without finding the key
        if m.group("key") == path[depth] and (depth == 0 and indent == 0 or depth > 0):
            if depth == len(path) - 1:
                return i
            depth, parent_indent = depth + 1, indent
    return None


def set_line(file: Path, path: list[str], scalar: str) -> None:
    """Replace the value on the line of `path`, or add the key (under its section) when absent."""
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    index = find_line(lines, path)
    if index is not None:
        m = LINE.match(lines[index].rstrip("\n"))
        assert m is not None
        head = f"{m.group('indent')}{m.group('key')}: {scalar}"
        comment = m.group("comment")
        width = len(m.group("indent")) + len(m.group("key")) + 1 + len(m.group("value")) + len(m.group("pad"))
        lines[index] = (f"{head.ljust(width)}{'' if width > len(head) else ' '}{comment}" if comment else head) + "\n"
    else:
        section = find_line(lines, path[:-1]) if len(path) > 1 else None
        indent = "  " * (len(path) - 1)
        new = f"{indent}{path[-1]}: {scalar}  # set by the bugfix loop\n"
        if len(path) > 1 and section is None:
            lines += [f"{path[0]}:\n", new]
        elif section is None:
            lines.append(new)
        else:
            lines.insert(section + 1, new)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    file.write_text("".join(lines), encoding="utf-8")
