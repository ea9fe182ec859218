"""Gate D2, and the review before compute: a job never starts without its pretrained weights, exactly as fetched.

    errors = list(rule_pretrained_weights(project))   # configs/train.yaml's model, when its config says pretrained: true
    errors = composed_model_errors(project, text)      # the model of `scripts/train.py ARGS --print-config` (a submit's)

Nodes have no internet, and the project sets HF_HUB_OFFLINE=1: a missing or altered file under weights/<model>/ would
fail the job after it waited in the queue. validators/weights.py (the core) checks each file's sha256 against
weights/manifest.yaml; the hub wing that writes them is never imported here.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

from ..errors import GateError
from ..project import Project
from ..weights import verify, verify_configured


def rule_pretrained_weights(project: Project) -> Iterator[GateError]:
    yield from verify_configured(project)


def composed_model_errors(project: Project, config_text: str) -> list[GateError]:
    """`verify` of the composed config's model when it says pretrained: true (a command line may pick another model)."""
    try:
        model = (yaml.safe_load(config_text) or {}).get("model") or {}
    except yaml.YAMLError:
        return []  # the config's own check reports it
    if isinstance(model, dict) and model.get("pretrained") is True and isinstance(model.get("name"), str):
        return list(verify(project, model["name"]))
    return []
