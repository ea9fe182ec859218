"""Sections of the generated README.md that stages rewrite: between `<!-- hephaestus:NAME:start -->` and `:end -->`.

Rewriting is idempotent and leaves every byte outside the markers as it was. A README without the
markers (an older project, or markers deleted by hand) gets the section appended at the end.
"""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- hephaestus:{name}:start -->", f"<!-- hephaestus:{name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with the section `name` holding `body` (markers included, body between blank lines)."""
    start, end = markers(name)
    block = f"{start}\n\n{body.strip()}\n\n{end}"
    head, found, rest = text.partition(start)
    if found and end in rest:
        return head + block + rest.split(end, 1)[1]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def write_section(path: Path, name: str, body: str) -> bool:
    """Rewrite the section in the file; True when the file changed. Bytes, not text mode: CRLF lines stay CRLF."""
    text = path.read_bytes().decode("utf-8") if path.is_file() else ""
    new = replace_section(text, name, body)
    if new != text:
        path.write_bytes(new.encode("utf-8"))
    return new != text
