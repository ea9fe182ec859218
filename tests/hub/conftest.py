"""A minimal project for the hub wing (answers, configs/train.yaml, model configs, configs/hub.yaml rendered from the
template's own file and catalog), the hub stand-in, and the validators CLI run as the project's nox session runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from ..helpers import CATALOG, TEMPLATE, write_file
from ..helpers.hf_server import HubServer

PYARROW = "pyarrow==26.0.1"  # validators.hub.PARQUET_READER; tests/hub/test_fetch_data.py checks they agree


def hub_yaml(family: str) -> str:
    source = (TEMPLATE / "template/configs/hub.yaml.jinja").read_text(encoding="utf-8")
    return jinja2.Environment(keep_trailing_newline=True).from_string(source).render(
        catalog=CATALOG, task_family=family, datamodule=CATALOG[family]["datamodule"])


def make_project(root: Path, family: str = "image_classification", model: str = "resnet18") -> Path:
    """The family's model configs: its pretrained models say `pretrained: true`; configs/train.yaml picks `model`."""
    write_file(root / ".copier-answers.yml", f"project_name: demo_project\ntask_family: {family}\nmodel: {model}\n")
    write_file(root / "configs/train.yaml", f"defaults:\n  data: mini  # d\n  model: {model}  # m\n")
    for key, spec in CATALOG[family]["models"].items():
        pretrained = "pretrained: true  # weights/<name>/\n" if spec["kind"] == "pretrained" else ""
        write_file(root / f"configs/model/{key}.yaml", f"name: {key}  # k\n{pretrained}")
    write_file(root / "configs/hub.yaml", hub_yaml(family))
    return root


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture
def image_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "demo_project")


def hub_env(hub: HubServer | None, home: Path, token: str | None = "hf_good", **extra: str) -> dict[str, str]:
    """The shell of the internet zone: HF_ENDPOINT at the stand-in, HF_HOME of its own (no user token file), and
    HF_HUB_OFFLINE=1 left over from the project's own setting, which a fetch must not obey."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE", "HEPHAESTUS_WEIGHTS"))}
    env.update({"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", **extra})
    if hub is not None:
        env["HF_ENDPOINT"] = hub.url
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def validators(project: Path, env: dict[str, str], *args: str, parquet: bool = False) -> subprocess.CompletedProcess:
    """`python -m validators --project P ARGS` in a process of its own; `parquet`: with pyarrow added for the one
    command, as `nox -s fetch_data` runs it (uv run --with)."""
    prefix = (["uv", "run", "--no-project", "--quiet", "--python", sys.executable, "--with", PYARROW, "python"] if parquet
              else [sys.executable])
    return subprocess.run([*prefix, "-m", "validators", "--project", str(project), *args], cwd=TEMPLATE, env=env,
                          capture_output=True, text=True, timeout=600)
