"""JSON Schemas of the planning documents (validators/schemas/*.schema.json) and their errors.

The schemas are the contract between the planners (offline and LLM), the Markdown documents'
YAML front matter, and every later stage that reads those documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from .errors import DependencyError, GateError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
HINTS = {
    "required": "add the missing key",
    "additionalProperties": "remove the key or fix its spelling: the schema is closed",
    "maximum": "scores and fractions lie in 0..1",
    "minimum": "scores and fractions lie in 0..1",
    "minItems": "the stage gate needs at least this many entries",
    "enum": "use one of the listed values",
    "pattern": "follow the documented format",
    "type": "use the documented type",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema `validators/schemas/<name>.schema.json`."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def json_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def schema_errors(instance: Any, name: str, *, file: str) -> Iterator[GateError]:
    """Every violation of schema `name` in `instance`, deepest first, as GateErrors."""
    try:
        import jsonschema
    except ImportError as err:
        raise DependencyError("jsonschema", "validating the planning documents", "pip install jsonschema") from err
    schema = load_schema(name)
    registry = _registry()
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    for error in sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        leaves = [error]
        if error.context:  # oneOf/anyOf/if-then: report the most specific sub-error
            leaves = [min(error.context, key=lambda e: -len(e.absolute_path))]
        for leaf in leaves:
            if leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict):
                allowed = list(leaf.schema.get("properties", {}))
                for key in [k for k in leaf.instance if k not in allowed]:
                    yield GateError(file=file, path=json_path([*leaf.absolute_path, key]), value=leaf.instance[key],
                                    expected=f"no key '{key}' here (allowed: {', '.join(allowed)})",
                                    hint=HINTS["additionalProperties"])
                continue
            expected = leaf.message
            if leaf.validator == "required":
                expected = leaf.message.replace(" is a required property", " to be present")
            yield GateError(
                file=file,
                path=json_path(leaf.absolute_path),
                value=leaf.instance if leaf.validator != "required" else None,
                expected=expected,
                hint=leaf.schema.get("description", "") or HINTS.get(str(leaf.validator), ""),
            )


@cache
def _registry() -> Any:
    from referencing import Registry, Resource

    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)
