"""Gate D7: the notes' front matter against schema `note`, no dangling link, the index complete; a warning
(never an error) for a note whose conclusions are still open `OPEN_DAYS` days after it was written.

    errors = list(check(project, datetime.now(UTC)))   # GateErrors, and GateWarnings for old open notes

A link dangles when a `[[id]]` or `[[id|title]]` names no note in notes/, when a reference link
(`[text][label]`, or a shortcut `[id]` shaped like a note id) has no definition, or when a definition's
relative target is not a file. Links inside code and HTML comments are not links.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ..artifacts import NOTES, NOTES_INDEX
from ..errors import GateError, GateWarning
from ..frontmatter import split
from ..schema import schema_errors
from .note_text import DEFINITION, FULL_REFERENCE, NOTE_ID, SHORTCUT, WIKI_LINK, Note, masked

OPEN_DAYS = 14  # a note's conclusions may stay open this long before the gate warns
INDEX_HINT = "every `nox -s note` call rewrites the index from the notes"


def rule_notes(project: Any) -> Iterator[GateError]:
    """Gate D7 now; nothing to check before the first note."""
    return check(project, datetime.now(UTC))


def links(file: str, text: str, folder: Any, ids: set[str]) -> Iterator[GateError]:
    """Every dangling wiki link, reference link and link definition of one Markdown file."""
    plain = masked(text)
    defined: set[str] = set()
    for match in DEFINITION.finditer(plain):
        label, target = match.group(1), match.group(2).strip("<>")
        defined.add(label.casefold())
        path = target.split("#")[0]
        if path and ":" not in path and not (folder / path).is_file():
            yield GateError(file, where(plain, match.start()), f"[{label}]: {target}", "a definition whose target exists "
                            f"({posixpath.join(NOTES.path, path)} does not)", "fix the file name or restore the note")
    for match in WIKI_LINK.finditer(plain):
        if match.group(1).strip() not in ids:
            yield GateError(file, where(plain, match.start()), match.group(0), "a link to a note of notes/ (its id)",
                            f"the notes: {', '.join(sorted(ids)) or 'none'}")
    for pattern in (FULL_REFERENCE, SHORTCUT):
        for match in pattern.finditer(plain):
            label = match.group(1)
            if label.casefold() in defined or pattern is SHORTCUT and not NOTE_ID.match(label):
                continue
            yield GateError(file, where(plain, match.start()), f"[{label}]", f"a link reference definition "
                            f"'[{label}]: <file> \"title\"' in the same file", "add the definition or fix the label")


def where(text: str, offset: int) -> str:
    return f"line {text.count(chr(10), 0, offset) + 1}"


def check(project: Any, now: datetime) -> Iterator[GateError]:
    folder = project.path(NOTES)
    index_name = posixpath.basename(NOTES_INDEX.path)
    paths = sorted(p for p in folder.glob("*.md") if p.name != index_name) if folder.is_dir() else []
    notes: list[Note] = []
    for path in paths:
        rel = f"{NOTES.path}/{path.name}"
        try:
            meta, body = split(path.read_text(encoding="utf-8"), file=rel)
        except GateError as err:
            yield err
            continue
        errors = list(schema_errors(meta, "note", file=rel))
        yield from errors
        if not errors and meta["id"] != path.stem:
            yield GateError(rel, "id", meta["id"], f"the file's name without .md: {path.stem!r}",
                            "the id is the note's permanent address: restore the one it was written with")
        notes.append(Note(path, meta, body))
    ids = {p.stem for p in paths}
    for note in notes:
        rel = f"{NOTES.path}/{note.path.name}"
        targets = note.meta.get("links")
        for n, target in enumerate(targets if isinstance(targets, list) else []):
            if isinstance(target, str) and target not in ids:
                yield GateError(rel, f"links[{n}]", target, "the id of a note in notes/",
                                f"the notes: {', '.join(sorted(ids))}")
        text = note.path.read_text(encoding="utf-8")
        head = text[:len(text) - len(note.body)]  # the front matter: its lines count, its brackets are YAML
        yield from links(rel, "\n" * head.count("\n") + note.body, folder, ids)
        yield from stale(rel, note, now)
    if not paths:
        return
    index = folder / index_name
    if not index.is_file():
        yield GateError(NOTES_INDEX.path, "", None, "the notes' map of contents", INDEX_HINT)
        return
    text = index.read_text(encoding="utf-8")
    listed = {m.group(1).strip() for m in WIKI_LINK.finditer(masked(text))}
    for note_id in sorted(ids - listed):
        yield GateError(NOTES_INDEX.path, note_id, None, f"a [[{note_id}|...]] link to {NOTES.path}/{note_id}.md", INDEX_HINT)
    yield from links(NOTES_INDEX.path, text, folder, ids)


def stale(rel: str, note: Note, now: datetime) -> Iterator[GateError]:
    """A warning when the conclusions are still open OPEN_DAYS after the note was written."""
    try:
        created = datetime.strptime(str(note.meta.get("created")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return  # the schema error says so
    age = now - created
    if note.open and age > timedelta(days=OPEN_DAYS):
        yield GateWarning(rel, "## Conclusions", None, f"the researcher's conclusions within {OPEN_DAYS} days "
                          f"(written {created:%Y-%m-%d}, {age.days} days ago)",
                          "write them under ## Conclusions and delete the line with the open marker")
