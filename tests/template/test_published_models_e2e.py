"""End to end: the published architectures, trained from scratch in generated projects.

FT-Transformer (Gorishniy et al. 2021, the authors' `rtdl-revisiting-models`) for both tabular families and
PatchTST (Nie et al. 2023, Hugging Face `transformers`) for time series. Each family's project is rendered with
its default model, its venv built by its own `nox -s setup` (which also measures tech.md's candidates), and then
`nox -s train_smoke -- model=<published>` trains the published model on the mini data (fast_dev_run, one epoch,
infer.py on runs/latest). The checkpoint is then served: the project's own tests/test_serve.py (FastAPI
TestClient) and scripts/serve.py over real HTTP, whose answers must equal infer.py's. The unit-level checks run
in the project venv too: the FT-Transformer the project builds is rtdl's own, parameter for parameter, and
PatchTST maps a window to the MLP forecaster's output shape.
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from validators.frontmatter import split

from ..helpers import render

pytestmark = pytest.mark.e2e
TIMEOUT = 1200
PUBLISHED = {"tabular_classification": "ft_transformer", "tabular_regression": "ft_transformer",
             "time_series_forecasting": "patchtst"}
INFER = {  # family -> (infer.py inputs, predictions, check of one prediction)
    "tabular_classification": (["data/mini/test.csv"], 86, lambda p: set(p["probs"]) == {"benign", "malignant"}),
    "tabular_regression": (["data/mini/test.csv"], 67, lambda p: isinstance(p["prediction"], float)),
    "time_series_forecasting": (["data/mini/series.csv"], 1, lambda p: len(p["forecast"]) == 4),
}
# One epoch at the default model's data.batch_size (the MLP's 2,048, the MLP forecaster's 1,024): 398 breast-cancer
# rows and 309 diabetes rows are one batch each; the CO2 series (2284 weeks, 15% val and 15% test: 1598 train
# steps) gives 1598 - 52 - 4 + 1 = 1543 windows, 2 batches.
STEPS = {"tabular_classification": 1, "tabular_regression": 1, "time_series_forecasting": 2}
SMOKE_SECONDS: dict[str, float] = {}  # `nox -s train_smoke` wall time per family, printed by the first test
_PROJECTS: dict[str, Path] = {}


def run(cmd: list[str], cwd: Path, timeout: int = TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def project(family: str, factory: pytest.TempPathFactory) -> Path:
    """`family`'s project: rendered, its venv built by `nox -s setup`, then `nox -s train_smoke -- model=<published>`."""
    if family not in _PROJECTS:
        root = render(factory.mktemp(family) / "demo_project", setup=False, task_family=family)
        run([sys.executable, "-m", "nox", "-s", "setup"], root)
        start = time.perf_counter()
        run([sys.executable, "-m", "nox", "-s", "train_smoke", "--", f"model={PUBLISHED[family]}"], root)
        SMOKE_SECONDS[family] = round(time.perf_counter() - start, 1)
        _PROJECTS[family] = root
    return _PROJECTS[family]


@pytest.fixture(scope="module", params=list(PUBLISHED))
def smoked(request, tmp_path_factory) -> tuple[str, Path]:
    return request.param, project(request.param, tmp_path_factory)


def python(root: Path) -> str:
    return str(root / ".venvs/debug-cpu/bin/python")


def in_project(root: Path, code: str) -> dict:
    """Run `code` with the project venv's Python and its src/ importable; the JSON it prints last."""
    out = run([python(root), "-c", "import sys; sys.path.insert(0, 'src')\n" + code], root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def latest(root: Path) -> Path:
    return (root / "runs/latest").resolve()


def test_train_smoke_trains_the_published_model_from_scratch(smoked):
    family, root = smoked
    print(f"\n{family}: nox -s train_smoke -- model={PUBLISHED[family]}: {SMOKE_SECONDS[family]} s")
    run_dir = latest(root)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert (summary["model"], summary["epochs"], summary["global_step"]) == (PUBLISHED[family], 1, STEPS[family])
    assert run_dir.name.endswith(f"-{PUBLISHED[family]}")
    assert math.isfinite(summary["metrics"]["test/loss"])  # the summary keeps test()'s metrics
    with (run_dir / "csv/metrics.csv").open(encoding="utf-8", newline="") as f:
        logged = list(csv.DictReader(f))
    for key in ("train/loss", "val/loss", "test/loss"):
        assert [math.isfinite(float(r[key])) for r in logged if r[key]] == [True], key  # one epoch: one value each
    assert (root / summary["best_checkpoint"]).is_file() and (run_dir / "checkpoints/last.ckpt").is_file()
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    assert config["model"]["name"] == PUBLISHED[family]


def test_infer_predicts_from_the_checkpoint(smoked):
    family, root = smoked
    inputs, count, check = INFER[family]
    checkpoint = latest(root) / "checkpoints/last.ckpt"
    out = json.loads(run([python(root), "scripts/infer.py", "--checkpoint", str(checkpoint), *inputs], root).stdout)
    assert len(out["predictions"]) == count and all(check(p) for p in out["predictions"])
    if "probs" in out["predictions"][0]:
        assert all(math.isclose(sum(p["probs"].values()), 1.0, abs_tol=1e-4) for p in out["predictions"])


def test_the_projects_service_tests_pass_on_the_checkpoint(smoked):
    """tests/test_serve.py serves runs/latest, which train_smoke pointed at the published model's run."""
    family, root = smoked
    out = run([python(root), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_serve.py"], root)
    tail = out.stdout.strip().splitlines()[-1]
    assert " passed" in tail and "failed" not in tail and "skipped" not in tail and "error" not in tail, tail


def test_the_projects_forward_shape_test_covers_the_published_model(smoked):
    family, root = smoked
    out = run([python(root), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_project.py", "-k",
               f"test_model_forward_shape and {PUBLISHED[family]}"], root)
    assert out.stdout.strip().splitlines()[-1].startswith("1 passed, "), out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status, json.loads(response.read())


def same(got, want) -> bool:
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, float):
        return math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-5)
    return got == want


def test_the_service_answers_over_http_as_infer_does(smoked, tmp_path):
    family, root = smoked
    inputs = INFER[family][0]
    want = json.loads(run([python(root), "scripts/infer.py", *inputs], root).stdout)["predictions"][0]
    with (root / inputs[0]).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if family == "time_series_forecasting":
        body = {"values": [float(r["value"]) for r in rows]}
    else:
        body = {"features": {k: float(v) for k, v in rows[0].items() if k != "target"}}
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([python(root), "scripts/serve.py", "--port", str(port)], cwd=root, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                status, health = request(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "the service did not answer /health within 180 s"
                time.sleep(0.5)
        assert (status, health) == (200, {"status": "ok", "model_loaded": True, "device": "cpu"})
        status, got = request(f"http://127.0.0.1:{port}/predict", body)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert status == 200
    assert same({k: v for k, v in got.items() if k != "id"}, {k: v for k, v in want.items() if k != "id"}), (got, want)


FT_CHECK = """
import json, torch, rtdl_revisiting_models as rtdl
from demo_project.config import load_config
from demo_project.train import build
datamodule, module = build(load_config(["model=ft_transformer"]))
kwargs = rtdl.FTTransformer.get_default_kwargs()
kwargs.pop("_is_default")
sizes = module.hparams.model_kwargs
reference = rtdl.FTTransformer(n_cont_features=sizes["num_features"], cat_cardinalities=[], d_out=sizes["num_outputs"], **kwargs)
ours = {k.removeprefix("model.net."): list(v.shape) for k, v in module.named_parameters()}
theirs = {k: list(v.shape) for k, v in reference.named_parameters()}
_, paper = build(load_config(["experiment=ft_transformer_paper", "optim.scheduler=none"]))
groups = paper.configure_optimizers().param_groups
print(json.dumps({"sizes": sizes, "same_parameters": ours == theirs,
                  "params": sum(p.numel() for p in module.parameters()), "rtdl": sum(p.numel() for p in reference.parameters()),
                  "groups": [[g["lr"], g["weight_decay"], sum(p.numel() for p in g["params"])] for g in groups],
                  "rtdl_groups": [sum(p.numel() for p in g["params"]) for g in reference.make_parameter_groups()]}))
"""
FT_PARAMS = {"tabular_classification": ({"num_features": 30, "num_outputs": 2}, 903554),
             "tabular_regression": ({"num_features": 10, "num_outputs": 1}, 895681)}


@pytest.mark.parametrize("family", list(FT_PARAMS))
def test_ft_transformer_is_rtdls_own_model_and_optimizer(family, tmp_path_factory):
    """Parameter for parameter the package's FTTransformer with its default kwargs; tech.md measured the same count;
    experiment=ft_transformer_paper gives the paper's AdamW with rtdl's weight-decay-free group."""
    root = project(family, tmp_path_factory)
    got = in_project(root, FT_CHECK)
    sizes, params = FT_PARAMS[family]
    assert got["sizes"] == sizes and got["same_parameters"]
    assert got["params"] == got["rtdl"] == params
    tech = split((root / "docs/plan/tech.md").read_text(encoding="utf-8"))[0]
    assert {c["key"]: c["params"] for c in tech["candidates"]}["ft_transformer"] == params
    main, no_decay = got["rtdl_groups"]
    assert got["groups"] == [[1e-4, 1e-5, main], [1e-4, 0.0, no_decay]] and main + no_decay == params


PATCHTST_CHECK = """
import json, torch
from demo_project.config import load_config
from demo_project.train import build
out = {}
for data in ([], ["data.window=24", "data.horizon=6"]):
    _, patchtst = build(load_config(["model=patchtst", *data]))
    _, mlp = build(load_config(["model=mlp_forecaster", *data]))
    x = torch.randn(3, patchtst.hparams.model_kwargs["window"])
    patchtst.eval()
    config = patchtst.model.net.config
    out[str(x.shape[1])] = {"patchtst": list(patchtst(x).shape), "mlp": list(mlp.eval()(x).shape),
                            "patches": patchtst.model.net.model.patchifier.num_patches,
                            "config": [config.context_length, config.prediction_length, config.patch_length, config.patch_stride],
                            "params": sum(p.numel() for p in patchtst.parameters())}
print(json.dumps(out))
"""


def test_patchtst_maps_a_window_to_the_mlp_forecasters_shape(tmp_path_factory):
    root = project("time_series_forecasting", tmp_path_factory)
    got = in_project(root, PATCHTST_CHECK)
    assert {w: [g["patchtst"], g["mlp"], g["patches"], g["config"]] for w, g in got.items()} == {
        "52": [[3, 4], [3, 4], 12, [52, 4, 8, 4]],  # (52 - 8) / 4 + 1 = 12 patches
        "24": [[3, 6], [3, 6], 5, [24, 6, 8, 4]],
    }
    tech = split((root / "docs/plan/tech.md").read_text(encoding="utf-8"))[0]
    assert {c["key"]: c["params"] for c in tech["candidates"]}["patchtst"] == got["52"]["params"]


HINT = "fix it in its config file, or override it: {}=VALUE"
BAD = [  # (family, overrides, the one stderr line)
    ("time_series_forecasting", ["model=patchtst", "model.patch_length=40"],
     "error: configs/ or <command line>: model.patch_length: 40 is more than half of data.window=52 (hint: PatchTST needs "
     "at least 2 patches in the window: lower model.patch_length or raise data.window)"),
    ("time_series_forecasting", ["model=patchtst", "data.window=12"],
     "error: configs/ or <command line>: model.patch_length: 8 is more than half of data.window=12 (hint: PatchTST needs "
     "at least 2 patches in the window: lower model.patch_length or raise data.window)"),
    ("time_series_forecasting", ["model=patchtst", "model.stride=9"],
     "error: configs/ or <command line>: model.stride: 9 is more than model.patch_length=8 (hint: patches further apart "
     "than their length skip steps of the window)"),
    ("time_series_forecasting", ["model=patchtst", "model.d_model=18"],
     "error: configs/ or <command line>: model.d_model: 18 is not a multiple of model.heads=4 (hint: each attention head "
     "gets d_model / heads dimensions)"),
    ("time_series_forecasting", ["model=patchtst", "model.patch_length=0"],
     f"error: configs/ or <command line>: model.patch_length: 0 is not >= 1 (hint: {HINT.format('model.patch_length')})"),
    ("tabular_classification", ["model=ft_transformer", "model.d_block=100"],
     "error: configs/ or <command line>: model.d_block: 100 is not a multiple of model.attention_n_heads=8 (hint: each "
     "attention head gets d_block / attention_n_heads dimensions)"),
    ("tabular_regression", ["model=ft_transformer", "model.attention_dropout=1.0"],
     f"error: configs/ or <command line>: model.attention_dropout: 1.0 is not in [0, 1) (hint: {HINT.format('model.attention_dropout')})"),
    ("tabular_regression", ["model=ft_transformer", "model.n_blocks=0"],
     f"error: configs/ or <command line>: model.n_blocks: 0 is not >= 1 (hint: {HINT.format('model.n_blocks')})"),
]


@pytest.mark.parametrize(("family", "overrides", "line"), BAD, ids=[" ".join(o[1:]) for _, o, _ in BAD])
def test_a_bad_value_is_one_error_line_naming_the_key(family, overrides, line, tmp_path_factory):
    root = project(family, tmp_path_factory)
    out = run([python(root), "scripts/train.py", "--print-config", *overrides], root, check=False)
    assert (out.returncode, out.stdout, out.stderr.splitlines()) == (1, "", [line])
