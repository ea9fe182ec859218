"""Markdown documents with YAML front matter: the data for code, the prose for people.

    data, body = split(Path("docs/plan/requirements.md").read_text())
    text = join(data, body)
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import GateError

FENCE = "---"


def join(data: dict[str, Any], body: str) -> str:
    dumped = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return f"{FENCE}\n{dumped}{FENCE}\n\n{body.lstrip()}"


def split(text: str, *, file: str = "<document>") -> tuple[dict[str, Any], str]:
    """(front matter, body); raises GateError when the front matter is missing or not a mapping."""
    if not text.startswith(FENCE + "\n"):
        raise GateError(file, "", text[:40], "a document starting with a '---' line (YAML front matter)",
                        "the planner writes it; restore it from `git` or re-run the hook with --force")
    end = text.find(f"\n{FENCE}\n", len(FENCE))
    if end < 0:
        raise GateError(file, "", None, "a closing '---' line after the front matter", "restore the document")
    try:
        data = yaml.safe_load(text[len(FENCE) + 1: end + 1])
    except yaml.YAMLError as err:
        raise GateError(file, "", str(err).splitlines()[0], "valid YAML front matter", "fix the YAML syntax") from err
    if not isinstance(data, dict):
        raise GateError(file, "", data, "a YAML mapping", "the front matter holds key: value pairs")
    return data, text[end + len(FENCE) + 2:]
