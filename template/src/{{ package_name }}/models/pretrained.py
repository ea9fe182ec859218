"""Pretrained weights are read from `weights/<model>/` only: training and serving never reach the hub.

`nox -s fetch_weights` (run once where there is internet) downloads each selected model of the
catalog into `weights/<model>/` and records repo, revision and the sha256 of every file in
`weights/manifest.yaml`; copy `weights/` to the cluster with the project. The package sets
HF_HUB_OFFLINE=1 on import, so a missing file is an error here, not a download.

    path = weights_dir("resnet18")   # <project>/weights/resnet18, or a ConfigError that says how to fetch it

$HEPHAESTUS_WEIGHTS points at another folder with the same layout (a read-only mount in the Docker image).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..runs import PROJECT_ROOT


def weights_root() -> Path:
    return Path(os.environ.get("HEPHAESTUS_WEIGHTS") or PROJECT_ROOT / "weights")


def weights_dir(model: str) -> Path:
    """The folder `model`'s pretrained weights were fetched into; ConfigError when they are missing."""
    path = weights_root() / model
    if not (path / "config.json").is_file():
        raise ConfigError(file=f"configs/model/{model}.yaml", key="pretrained", value=True,
                          expected=f"needs the weights in {path}/ (config.json is missing)",
                          hint=f"run `nox -s fetch_weights -- {model}` where there is internet and copy weights/ here, "
                               "or set model.pretrained=false to train the same architecture from random weights")
    return path
