"""catalog.yml is the only list of task families: every other per-family table agrees with it."""

from __future__ import annotations

import json

from hooks.mini import build
from hooks.planner import offline
from validators.research.guidance import AUGMENTATION

from ..helpers import CATALOG, TEMPLATE

FAMILIES = set(CATALOG)


def enums(schema: str) -> list[set[str]]:
    """Every enum of the schema that lists a family."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "image_classification" in node.get("enum", []):
                found.append(set(node["enum"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((TEMPLATE / "validators/schemas" / f"{schema}.schema.json").read_text(encoding="utf-8")))
    return found


def test_the_schemas_enumerate_exactly_the_catalog_families():
    found = {schema: enums(schema) for schema in ("requirements", "tech", "task")}
    assert {schema: len(sets) for schema, sets in found.items()} == {"requirements": 2, "tech": 1, "task": 1}
    assert all(sets == FAMILIES for values in found.values() for sets in values)


def test_every_family_has_mini_data_augmentation_advice_and_planner_cues():
    assert set(build.WRITERS) == FAMILIES  # hooks/mini/build.py; tests/template/test_mini_data.py checks what ships
    assert set(AUGMENTATION) == FAMILIES
    assert {family for families in offline.GENERIC_CUES.values() for family in families} == FAMILIES
    assert all(CATALOG[family]["keywords"] for family in FAMILIES)
