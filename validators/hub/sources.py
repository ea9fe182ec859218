"""configs/hub.yaml: where each pretrained model and the full dataset come from (rendered from the template's catalog).

    sources = load(project)
    sources.models["resnet18"]          # Source(repo="microsoft/resnet-18", revision="main")
    sources.dataset                     # Source(repo="ylecun/mnist", revision="main", layout="image"), or None
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from ..artifacts import HUB_CONFIG
from ..errors import GateError
from ..project import Project

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
LAYOUTS = ("image", "text")  # what fetch-data can write: the image and text data modules' on-disk formats


@dataclass(frozen=True)
class Source:
    repo: str
    revision: str
    layout: str = ""  # datasets: image or text
    config: str = ""  # datasets: the hub's configuration folder when it has several


@dataclass(frozen=True)
class Sources:
    models: dict[str, Source]
    dataset: Source | None


def _source(data: Any, where: str, dataset: bool) -> Source:
    file = HUB_CONFIG.path
    keys = {"repo", "revision", "layout", "config"} if dataset else {"repo", "revision"}
    if not isinstance(data, dict) or set(data) - keys:
        raise GateError(file, where, data, f"a mapping with {', '.join(sorted(keys))}", "copier update restores the file")
    repo, revision = data.get("repo"), data.get("revision", "main")
    if not isinstance(repo, str) or not REPO_ID.fullmatch(repo):
        raise GateError(file, f"{where}.repo", repo, "a hub repository id: <namespace>/<name>")
    if not isinstance(revision, str) or not revision:
        raise GateError(file, f"{where}.revision", revision, "a branch, tag or commit hash")
    layout, config = data.get("layout", ""), data.get("config") or ""
    if dataset and layout not in LAYOUTS:
        raise GateError(file, f"{where}.layout", layout, f"one of {', '.join(LAYOUTS)} (the data module's on-disk format)")
    return Source(repo, revision, layout, str(config))


def load(project: Project) -> Sources:
    path = project.path(HUB_CONFIG)
    if not path.is_file():
        raise GateError(HUB_CONFIG.path, "", None, HUB_CONFIG.what, "copier update restores it (it is the template's)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise GateError(HUB_CONFIG.path, "", None, f"valid YAML ({str(err).splitlines()[0]})") from err
    models = (data.get("models") or {}) if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise GateError(HUB_CONFIG.path, "models", models, "a mapping of model name -> {repo, revision}")
    dataset = data.get("dataset")
    return Sources({name: _source(spec, f"models.{name}", False) for name, spec in models.items()},
                   _source(dataset, "dataset", True) if dataset is not None else None)
