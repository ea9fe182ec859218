"""Render every family x model with the real copier and check the generated project statically."""

from __future__ import annotations

import csv
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from validators.project import Project
from validators.tracking.offline import rule_wandb_offline

from ..helpers import FAMILY_MODELS, TEMPLATE, render

COMMON_FILES = {
    ".copier-answers.yml", ".gitignore", "README.md", "noxfile.py", "pyproject.toml",
    "requirements-cpu.txt", "requirements-gpu.txt",
    "configs/train.yaml", "configs/hub.yaml", "configs/data/mini.yaml", "configs/data/full.yaml",
    "configs/trainer/cpu.yaml", "configs/trainer/gpu.yaml", "configs/trainer/ddp_cpu.yaml", "configs/trainer/ddp_gpu.yaml",
    "configs/logger/csv.yaml", "configs/logger/wandb.yaml",
    "configs/cluster/local.yaml", "configs/cluster/slurm.yaml", "configs/cluster/qizhi.yaml",
    "scripts/train.py", "scripts/infer.py", "tests/test_project.py", "data/mini/DATA_CARD.md",
    "src/demo_project/__init__.py", "src/demo_project/config.py", "src/demo_project/errors.py",
    "src/demo_project/train.py", "src/demo_project/predict.py", "src/demo_project/runs.py", "configs/experiment/README.md",
    "src/demo_project/data/__init__.py", "src/demo_project/data/common.py",
    "src/demo_project/models/__init__.py", "src/demo_project/models/module.py", "src/demo_project/models/pretrained.py",
    "src/demo_project/models/components/__init__.py",
    "reports/PROJECT_BUILD_LOG.md", "reports/REVIEW_REPORT.md", "docs/venv.md", "scripts/explore_mini.ipynb", "CLAUDE.md",
    "docs/specs/VENV_CONFIG.md", "docs/specs/DEBUG_CODE.md", "docs/specs/DOCKER_CONFIG.md", "docs/specs/OMEGACONF_GUIDE.md",
    "docs/specs/ML_ARCHITECTURE_GUIDE.md", "docs/plan/requirements.md", "docs/plan/tech.md", "docs/plan/task.md",
    "scripts/serve.py", "scripts/rollback.sh", "tests/test_serve.py", ".dockerignore",
    *(f"deploy/docker/{name}" for name in ("Dockerfile.cpu", "Dockerfile.gpu", "docker-compose.yml", "requirements.txt")),
    "deploy/sync-agent/hephaestus-sync.service",
    ".github/workflows/review.yml", ".github/workflows/experiment.yml",
    *(f"src/demo_project/serve/{name}.py" for name in ("__init__", "app", "examples", "inputs", "limits", "metrics", "settings")),
    *(f"src/demo_project/serve/static/{name}" for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "README.md")),
} | {  # the validators package travels into every project (template/validators links to ../validators)
    f"validators/{p.relative_to(TEMPLATE / 'validators').as_posix()}" for p in (TEMPLATE / "validators").rglob("*")
    if p.is_file() and "__pycache__" not in p.parts
}
FAMILY_FILES = {
    "image_classification": {"src/demo_project/data/image.py", "data/mini/split.csv",
                             "src/demo_project/models/components/small_cnn.py", "src/demo_project/models/components/resnet.py",
                             "configs/model/small_cnn.yaml", "configs/model/resnet.yaml",
                             "src/demo_project/models/components/hf_image.py", "configs/model/resnet18.yaml",
                             "configs/model/resnet50.yaml", "configs/model/convnext_tiny.yaml"},
    "text_classification": {"src/demo_project/data/text.py", "data/mini/train.csv", "data/mini/val.csv", "data/mini/test.csv",
                            "src/demo_project/models/components/fasttext.py", "src/demo_project/models/components/text_cnn.py",
                            "src/demo_project/models/components/hf_text.py",
                            "configs/model/fasttext.yaml", "configs/model/text_cnn.yaml", "configs/model/distilbert.yaml",
                            "configs/model/bert_chinese.yaml", "configs/model/mdistilbert.yaml"},
    "tabular_classification": {"src/demo_project/data/tabular.py", "data/mini/train.csv", "data/mini/val.csv", "data/mini/test.csv",
                               "src/demo_project/models/components/mlp.py", "src/demo_project/models/components/tabular_resnet.py",
                               "src/demo_project/models/components/ft_transformer.py",
                               "configs/model/mlp.yaml", "configs/model/tabular_resnet.yaml", "configs/model/ft_transformer.yaml",
                               "configs/experiment/ft_transformer_paper.yaml"},
    "time_series_forecasting": {"src/demo_project/data/timeseries.py", "data/mini/series.csv",
                                "src/demo_project/models/components/mlp_forecaster.py",
                                "src/demo_project/models/components/gru_forecaster.py",
                                "src/demo_project/models/components/patchtst.py",
                                "configs/model/mlp_forecaster.yaml", "configs/model/gru_forecaster.yaml", "configs/model/patchtst.yaml"},
}
FAMILY_FILES["tabular_regression"] = FAMILY_FILES["tabular_classification"]
IMAGES_PER_CLASS = 60


def project_files(root: Path) -> set[str]:
    """Rendered files; bytecode caches left out (the copy hooks run Python, and CI lets it write __pycache__)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not p.relative_to(root).as_posix().startswith("data/mini/images/") and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = {}
    for family, model in FAMILY_MODELS:
        dst = tmp_path_factory.mktemp(f"{family}-{model}") / "demo_project"
        out[family, model] = render(dst, task_family=family, model=model)
    return out


@pytest.mark.parametrize(("family", "model"), FAMILY_MODELS, ids=[f"{f}-{m}" for f, m in FAMILY_MODELS])
class TestRendered:
    def test_exact_file_set(self, rendered, family, model):
        assert project_files(rendered[family, model]) == COMMON_FILES | FAMILY_FILES[family]

    def test_nothing_left_unrendered(self, rendered, family, model):
        root = rendered[family, model]
        for path in root.rglob("*"):
            assert "{{" not in path.name and "{%" not in path.name, path
            if path.relative_to(root).parts[0] == "validators":
                continue  # the linked package is copied as it is: its braces are Python (f-strings, docker --format)
            if path.suffix in {".py", ".yaml", ".yml", ".md", ".toml", ".txt", ".csv"}:
                text = path.read_text(encoding="utf-8")
                if path.parent.relative_to(root).as_posix() == ".github/workflows":
                    text = text.replace("${{", "")  # GitHub's own expressions, kept by {% raw %}
                assert "{{" not in text and "{%" not in text, path

    def test_python_compiles_and_ruff_is_clean(self, rendered, family, model):
        root = rendered[family, model]
        for path in root.rglob("*.py"):
            py_compile.compile(str(path), doraise=True)
        result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=root,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout

    def test_configs_load_and_select_the_answers(self, rendered, family, model):
        root = rendered[family, model]
        for path in (root / "configs").rglob("*.yaml"):
            assert isinstance(OmegaConf.to_container(OmegaConf.load(path)), dict), path
        train = OmegaConf.load(root / "configs/train.yaml")
        assert dict(train.defaults) == {"data": "mini", "model": model, "trainer": "cpu", "logger": "wandb"}
        assert OmegaConf.load(root / f"configs/model/{model}.yaml").name == model

    def test_a_tiny_baseline_as_the_default_model_brings_its_own_batch(self, rendered, family, model):
        # catalog.yml's batch_size: large enough that Lightning's fixed per-step cost stays under 5% on a CPU
        batch = {("text_classification", "fasttext"): 1024, ("tabular_classification", "mlp"): 2048,
                 ("tabular_regression", "mlp"): 2048, ("time_series_forecasting", "mlp_forecaster"): 1024}
        family_batch = {"image_classification": 128, "text_classification": 256, "tabular_classification": 512,
                        "tabular_regression": 512, "time_series_forecasting": 512}
        for data in ("mini", "full"):
            cfg = OmegaConf.load(rendered[family, model] / f"configs/data/{data}.yaml")
            assert cfg.batch_size == batch.get((family, model), family_batch[family]), data

    def test_every_yaml_key_is_commented(self, rendered, family, model):
        root = rendered[family, model]
        for path in (root / "configs").rglob("*.yaml"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip() and not line.lstrip().startswith("#") and ":" in line and not line.rstrip().endswith(":"):
                    assert " # " in line, f"{path}:{n}: key without a comment: {line!r}"

    def test_rollback_script_is_executable_and_parses(self, rendered, family, model):
        script = rendered[family, model] / "scripts" / "rollback.sh"
        assert script.stat().st_mode & 0o111 and 'image="demo_project:${variant}"' in script.read_text(encoding="utf-8")
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0

    def test_answers_recorded(self, rendered, family, model):
        answers = yaml.safe_load((rendered[family, model] / ".copier-answers.yml").read_text())
        assert answers["task_family"] == family and answers["model"] == model
        assert answers["llm_model"] == "offline"
        assert "catalog" not in answers  # derived data is not an answer


def test_mini_data_matches_the_full_loader_format(tmp_path):
    """Image mini data: PNG folders + split manifest, 60 per class, every path present."""
    root = render(tmp_path / "demo_project", task_family="image_classification")
    rows = list(csv.DictReader((root / "data/mini/split.csv").open()))
    assert len(rows) == 10 * IMAGES_PER_CLASS
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert all((root / "data/mini" / r["path"]).is_file() for r in rows)
    assert "real data (its origin below), shipped with the template as files" in (root / "data/mini/DATA_CARD.md").read_text()


def test_text_mini_data_is_labelled_generated(tmp_path):
    root = render(tmp_path / "demo_project", task_family="text_classification")
    card = (root / "data/mini/DATA_CARD.md").read_text(encoding="utf-8")
    assert "- kind: generated (synthetic)" in card
    texts = [r["text"] for r in csv.DictReader((root / "data/mini/train.csv").open(encoding="utf-8"))]
    assert any("这个" in t for t in texts) and any(t.startswith("The ") for t in texts)


def test_gpu_and_csv_answers_select_their_configs(tmp_path):
    root = render(tmp_path / "demo_project", accelerator="gpu", logger="csv")
    train = OmegaConf.load(root / "configs/train.yaml")
    assert (train.defaults.trainer, train.defaults.logger) == ("gpu", "csv")
    # wandb stays pinned: train.py imports it for `logger=wandb`, an override every project accepts
    assert "wandb==0.31.0" in (root / "requirements-cpu.txt").read_text().splitlines()
    assert 'DEFAULT_ENV = "debug-gpu"' in (root / "noxfile.py").read_text()


def test_default_logger_is_wandb_offline(tmp_path):
    root = render(tmp_path / "demo_project", task_family="tabular_regression")
    assert "wandb==0.31.0" in (root / "requirements-cpu.txt").read_text().splitlines()
    logger = OmegaConf.load(root / "configs/logger/wandb.yaml")
    assert (logger.name, logger.offline) == ("wandb", True)
    assert list(rule_wandb_offline(Project(root))) == []  # gate D1: offline, and no W&B key in what ships
