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


def expectation(validator: str, value: Any, message: str) -> str:
    """What would pass, in words, for the common JSON Schema keywords."""
    words = {
        "type": lambda v: f"a value of type {' or '.join(v) if isinstance(v, list) else v}",
        "maximum": lambda v: f"at most {v}", "minimum": lambda v: f"at least {v}",
        "exclusiveMinimum": lambda v: f"more than {v}", "const": lambda v: repr(v),
        "enum": lambda v: "one of " + ", ".join(map(repr, v)), "pattern": lambda v: f"text matching {v}",
        "minItems": lambda v: f"at least {v} item(s)", "minLength": lambda v: "non-empty text" if v == 1 else f"at least {v} characters",
    }
    return words[validator](value) if validator in words else message


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
            expected, path = expectation(leaf.validator, leaf.validator_value, leaf.message), list(leaf.absolute_path)
            if leaf.validator == "required":  # point at the missing key itself
                missing = leaf.message.split("'")[1] if "'" in leaf.message else ""
                expected, path = f"'{missing}' to be present", [*path, missing]
            yield GateError(
                file=file,
                path=json_path(path),
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
