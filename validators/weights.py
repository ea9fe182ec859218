"""Fetched weights and datasets: the manifests `nox -s fetch_weights` and `nox -s fetch_data` write, and the
check that the files on disk are still exactly what was fetched.

In the core because two wings use it: the hub wing writes the manifests (where there is internet), the
cluster wing refuses a job or a .venv whose configured pretrained model fails `verify` (where there is none).
Stdlib and PyYAML only: the check runs on a login node before anything heavy is imported.

    errors = list(verify(project, "resnet18"))   # every problem: manifest, folder, each file, each hash
    manifest = read_weights(weights_root(project))
    manifest["resnet18"].files["model.safetensors"].sha256
    write_weights(weights_root(project), {**manifest, "resnet18": fetched})

weights/manifest.yaml (the weights root is $HEPHAESTUS_WEIGHTS when set, as in the project's models/pretrained.py):

    schema_version: 1
    models:
      resnet18:
        repo: microsoft/resnet-18          # the hub repository (configs/hub.yaml)
        revision: main                     # the revision asked for
        commit: 0123...                    # the commit the hub resolved it to (40 hex digits)
        endpoint: https://huggingface.co   # HF_ENDPOINT at fetch time
        fetched: 2026-11-26T10:00:00Z      # UTC
        files:                             # relative to weights/resnet18/
          config.json: {sha256: ..., bytes: ...}

data/full/manifest.yaml has the same fields under `dataset:`, plus `written` (every file written into data/full/,
relative to it, with its sha256 and size) and `val` (how the validation split was made). No token is ever recorded.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from .artifacts import FULL_DATA, FULL_DATA_MANIFEST, WEIGHTS, WEIGHTS_MANIFEST
from .errors import GateError
from .project import Project

SCHEMA_VERSION = 1
WEIGHTS_ENV = "HEPHAESTUS_WEIGHTS"  # another folder with the weights/ layout (the Docker image's read-only mount)
COMMIT = re.compile(r"[0-9a-f]{40}")
SHA256 = re.compile(r"[0-9a-f]{64}")
SHOWN = 12  # hash digits an error shows
TRAIN_CONFIG, MODEL_CONFIGS = "configs/train.yaml", "configs/model"
HEADER = {
    "weights": f"# Written by `nox -s fetch_weights`; checked by `nox -s submit` and `nox -s cluster_venv` (validators/weights.py).\n"
               f"# Copy {WEIGHTS.path}/ with this file to where the jobs run; never edit it by hand.\n",
    "data": "# Written by `nox -s fetch_data`: what was fetched from the hub and every file written into "
            f"{FULL_DATA.path}/ (validators/weights.py).\n",
}


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    bytes: int


@dataclass
class Fetch:
    """One fetched repository: where from, which commit, and every file kept (relative path -> sha256, size)."""

    repo: str
    revision: str
    commit: str
    endpoint: str
    fetched: str
    files: dict[str, FileRecord]
    written: dict[str, FileRecord] = field(default_factory=dict)  # datasets: the files written into data/full/
    val: str = ""  # datasets: how the validation split was made

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"repo": self.repo, "revision": self.revision, "commit": self.commit,
                               "endpoint": self.endpoint, "fetched": self.fetched, "files": _records(self.files)}
        if self.written:
            out["written"] = _records(self.written)
        if self.val:
            out["val"] = self.val
        return out


def _records(files: dict[str, FileRecord]) -> dict[str, dict[str, Any]]:
    return {name: {"sha256": r.sha256, "bytes": r.bytes} for name, r in sorted(files.items())}


def public_endpoint(url: str) -> str:
    """The endpoint as a manifest may record it: no user:password, no query (a token never lands in a file)."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def record_of(path: Path) -> FileRecord:
    return FileRecord(sha256_file(path), path.stat().st_size)


def weights_root(project: Project) -> Path:
    """Where weights/<model>/ and the manifest are: $HEPHAESTUS_WEIGHTS, else <project>/weights."""
    return Path(os.environ.get(WEIGHTS_ENV) or project.path(WEIGHTS))


def shown(project: Project, path: Path) -> str:
    """`path` relative to the project when inside it (as errors name files), else absolute."""
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return str(path)


def fetch_hint(model: str) -> str:
    return (f"nox -s fetch_weights -- {model} (where there is internet), then copy {WEIGHTS.path}/{model}/ and "
            f"{WEIGHTS_MANIFEST.path} here")


# ------------------------------------------------------------------ reading and writing


def _fetch(data: Any, file: str, where: str) -> Fetch:
    """One manifest entry, checked field by field; GateError naming the first bad one."""
    if not isinstance(data, dict):
        raise GateError(file, where, data, "a mapping with repo, revision, commit, endpoint, fetched and files")
    for key in ("repo", "revision", "commit", "endpoint", "fetched"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise GateError(file, f"{where}.{key}", data.get(key), "a non-empty string")
    if not COMMIT.fullmatch(data["commit"]):
        raise GateError(file, f"{where}.commit", data["commit"], "a commit hash of 40 hex digits")
    tables = {}
    for key in ("files", "written"):
        table = data.get(key, {})
        if not isinstance(table, dict) or (key == "files" and not table):
            raise GateError(file, f"{where}.{key}", table, "a mapping of relative path -> {sha256, bytes}")
        tables[key] = {}
        for name, rec in table.items():
            ok = (isinstance(rec, dict) and isinstance(rec.get("sha256"), str) and SHA256.fullmatch(rec["sha256"])
                  and isinstance(rec.get("bytes"), int) and rec["bytes"] >= 0)
            if not ok or name.startswith("/") or ".." in Path(name).parts:
                raise GateError(file, f"{where}.{key}.{name}", rec, "a relative path inside the folder -> {sha256: 64 hex digits, bytes: >= 0}")
            tables[key][name] = FileRecord(rec["sha256"], rec["bytes"])
    return Fetch(data["repo"], data["revision"], data["commit"], data["endpoint"], data["fetched"], tables["files"],
                 tables["written"], str(data.get("val", "")))


def _load(path: Path, file: str, key: str) -> Any:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise GateError(file, "", None, f"valid YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION or key not in data:
        raise GateError(file, "", data if not isinstance(data, dict) else {k: data[k] for k in list(data)[:3]},
                        f"schema_version: {SCHEMA_VERSION} and `{key}:`")
    return data[key]


def read_weights(root: Path, file: str = WEIGHTS_MANIFEST.path) -> dict[str, Fetch]:
    """The models of weights/manifest.yaml ({} when there is no manifest); GateError when it is malformed."""
    path = root / "manifest.yaml"
    if not path.is_file():
        return {}
    models = _load(path, file, "models") or {}
    if not isinstance(models, dict):
        raise GateError(file, "models", models, "a mapping of model -> fetch record")
    return {name: _fetch(entry, file, f"models.{name}") for name, entry in models.items()}


def write_weights(root: Path, models: dict[str, Fetch]) -> Path:
    body = {"schema_version": SCHEMA_VERSION, "models": {name: models[name].as_dict() for name in sorted(models)}}
    return _write(root / "manifest.yaml", HEADER["weights"], body)


def read_data(root: Path, file: str = FULL_DATA_MANIFEST.path) -> Fetch | None:
    """data/full/manifest.yaml's dataset (None when there is none); GateError when it is malformed."""
    path = root / "manifest.yaml"
    return _fetch(_load(path, file, "dataset"), file, "dataset") if path.is_file() else None


def write_data(root: Path, dataset: Fetch) -> Path:
    return _write(root / "manifest.yaml", HEADER["data"], {"schema_version": SCHEMA_VERSION, "dataset": dataset.as_dict()})


def _write(path: Path, header: str, body: dict[str, Any]) -> Path:
    """A temporary file, then a rename: a reader never sees half a manifest. libyaml when present (70k entries)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(header + yaml.dump(body, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1000), encoding="utf-8")
    tmp.replace(path)
    return path


# ------------------------------------------------------------------ which models a project uses


def model_configs(project: Project) -> dict[str, dict[str, Any]]:
    """configs/model/<name>.yaml, parsed, by name (unreadable files are the config gates' business: skipped)."""
    out = {}
    for path in sorted(project.path(MODEL_CONFIGS).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        out[path.stem] = data if isinstance(data, dict) else {}
    return out


def pretrained_models(project: Project) -> list[str]:
    """The models whose config says `pretrained: true`: the ones that need weights/<model>/."""
    return [name for name, cfg in model_configs(project).items() if cfg.get("pretrained") is True]


def configured_model(project: Project) -> str | None:
    """The model configs/train.yaml picks (`defaults: model:`), or None when it cannot be read."""
    try:
        data = yaml.safe_load(project.path(TRAIN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    model = (data or {}).get("defaults", {}).get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None


# ------------------------------------------------------------------ the check


def verify(project: Project, model: str) -> Iterator[GateError]:
    """Every reason weights/<model>/ is not what was fetched: no manifest or no entry for it, no folder,
    a file missing, a file whose sha256 differs (each named, with the expected and found hash)."""
    root = weights_root(project)
    manifest_file = shown(project, root / "manifest.yaml")
    folder = root / model
    hint = fetch_hint(model)
    try:
        entry = read_weights(root, manifest_file).get(model)
    except GateError as err:
        err.hint = hint
        yield err
        entry = None
    else:
        if not (root / "manifest.yaml").is_file():
            yield GateError(manifest_file, "", None, "the manifest nox -s fetch_weights writes (repo, commit, sha256 of every file)", hint)
        elif entry is None:
            yield GateError(manifest_file, f"models.{model}", None, f"the record of {model}'s fetch", hint)
    if not folder.is_dir():
        yield GateError(shown(project, folder), "", None, f"the folder of {model}'s pretrained weights", hint)
        return
    if entry is None:
        return
    source = f"{entry.repo}@{entry.commit[:SHOWN]}"
    for name, rec in sorted(entry.files.items()):
        path = folder / name
        if not path.is_file():
            yield GateError(shown(project, path), "", None, f"the file fetched from {source} ({rec.bytes} bytes, sha256 "
                            f"{rec.sha256[:SHOWN]})", hint)
            continue
        found = sha256_file(path)
        if found != rec.sha256:
            yield GateError(shown(project, path), "sha256", found[:SHOWN], f"sha256 {rec.sha256[:SHOWN]} as fetched from "
                            f"{source} ({rec.bytes} bytes; this file has {path.stat().st_size})", hint)


def verify_configured(project: Project, model: str | None = None) -> Iterator[GateError]:
    """`verify` of `model` (default: the one configs/train.yaml picks) when its config says pretrained: true."""
    model = model or configured_model(project)
    if model and model in pretrained_models(project):
        yield from verify(project, model)
