"""A checkpoint of the project's own files: every fix is tried on one and rolled back when it fails.

The project's files are its code, configs, tests, requirement files and documents; run outputs
(runs/, logs/, checkpoints/), venvs, caches, data and git's own folder are not part of it (a fix never
edits them, and copying them would cost seconds per attempt).

    checkpoint = TreeCheckpoint.take(project)
    ...                                    # a fix edits files
    checkpoint.diff()                      # unified diff of what changed since take()
    checkpoint.restore()                   # back to exactly the checkpointed files
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from ..project import Project


@dataclass
class TreeCheckpoint:
    project: Project
    files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def take(cls, project: Project) -> TreeCheckpoint:
        return cls(project, {rel: (project.root / rel).read_bytes() for rel in project.files()})

    @property
    def root(self) -> Path:
        return self.project.root

    def changed(self) -> list[str]:
        """Paths added, removed or modified since the checkpoint."""
        now = set(self.project.files())
        out = {rel for rel in now - set(self.files)} | {rel for rel in set(self.files) - now}
        out |= {rel for rel in now & set(self.files) if (self.root / rel).read_bytes() != self.files[rel]}
        return sorted(out)

    def diff(self) -> str:
        """A unified diff (a/ and b/ prefixes, like git) of every change since the checkpoint."""
        chunks = []
        for rel in self.changed():
            before = self.files.get(rel)
            after = (self.root / rel).read_bytes() if (self.root / rel).is_file() else None
            old = _lines(before)
            new = _lines(after)
            chunks += difflib.unified_diff(old, new, f"a/{rel}" if before is not None else "/dev/null",
                                           f"b/{rel}" if after is not None else "/dev/null")
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in chunks)

    def restore(self) -> list[str]:
        """Put every checkpointed file back and delete files created since; returns what changed."""
        changed = self.changed()
        for rel in changed:
            path = self.root / rel
            if rel in self.files:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.files[rel])
            else:
                path.unlink(missing_ok=True)
        return changed


def _lines(data: bytes | None) -> list[str]:
    if data is None:
        return []
    return data.decode("utf-8", errors="replace").splitlines(keepends=True)
