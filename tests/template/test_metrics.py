"""The generated TaskModule's metrics are torchmetrics' and equal scikit-learn's on the same predictions.

Two checks per task, each in the project's own code (rendered with the real copier, run in a fresh
interpreter from the project root, as its scripts run):
- random predictions, fed in batches to `build_metrics(...)`: the epoch-level values equal sklearn's
  accuracy_score, f1_score(average="macro"), roc_auc_score(multi_class="ovr"), mean_absolute_error,
  root_mean_squared_error and mean_absolute_percentage_error on all of them, to 1e-6;
- `Trainer.validate` on the mini data: every `val/<name>` the module logs equals sklearn's value on the
  module's own predictions (de-standardised for regression), and the names bench code reads are there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import render

RANDOM = """
import json, sys
import numpy as np, torch
sys.path.insert(0, "src")
from sklearn import metrics as sk
from metrics_project.models.module import build_metrics

torch.manual_seed(0)
out = {}
if sys.argv[1] == "classification":
    for classes in (2, 5):
        m = build_metrics(classes)
        y = torch.randint(0, classes, (1000,))
        probs = torch.randn(1000, classes).mul(2).softmax(dim=1)
        for lo in range(0, 1000, 128):  # one update per batch, as the val/test steps do
            m.update(probs[lo:lo + 128], y[lo:lo + 128])
        got = {k: float(v) for k, v in m.compute().items()}
        p, t = probs.double().numpy(), y.numpy()
        score = p[:, 1] if classes == 2 else p  # sklearn's binary form takes the positive class's score
        want = {"acc": sk.accuracy_score(t, p.argmax(1)), "f1": sk.f1_score(t, p.argmax(1), average="macro"),
                "auroc": sk.roc_auc_score(t, score, multi_class="ovr")}
        out[str(classes)] = {"got": got, "want": want}
else:
    m = build_metrics()
    y = torch.rand(1000, 4) * 3 + 0.5  # away from 0: MAPE divides by the target
    pred = y + torch.randn(1000, 4) * 0.3
    for lo in range(0, 1000, 128):
        m.update(pred[lo:lo + 128], y[lo:lo + 128])
    got = {k: float(v) for k, v in m.compute().items()}
    p, t = pred.double().numpy().ravel(), y.double().numpy().ravel()
    want = {"mae": sk.mean_absolute_error(t, p), "rmse": sk.root_mean_squared_error(t, p),
            "mape": sk.mean_absolute_percentage_error(t, p)}
    out["regression"] = {"got": got, "want": want}
print("metrics:", json.dumps(out))
"""

VALIDATE = """
import json, sys
import lightning as L, numpy as np, torch
sys.path.insert(0, "src")
from sklearn import metrics as sk
from metrics_project.config import load_config
from metrics_project.train import build

cfg = load_config(["logger=csv"])
datamodule, module = build(cfg)
trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
trainer.validate(module, datamodule=datamodule, verbose=False)
logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
module.eval()
with torch.no_grad():
    outs, ys = zip(*((module(x), y) for x, y in datamodule.val_dataloader()))
out, y = torch.cat(outs), torch.cat(ys)
if "acc" in module.metrics["val"]:
    p, t = out.softmax(dim=1).double().numpy(), y.numpy()
    score = p[:, 1] if p.shape[1] == 2 else p
    want = {"val/acc": sk.accuracy_score(t, p.argmax(1)), "val/f1": sk.f1_score(t, p.argmax(1), average="macro"),
            "val/auroc": sk.roc_auc_score(t, score, multi_class="ovr")}
else:
    p = module.to_target_units(out.view_as(y)).double().numpy().ravel()
    t = module.to_target_units(y).double().numpy().ravel()
    want = {"val/mae": sk.mean_absolute_error(t, p), "val/rmse": sk.root_mean_squared_error(t, p),
            "val/mape": sk.mean_absolute_percentage_error(t, p)}
print("validate:", json.dumps({"logged": logged, "want": want, "n": len(y)}))
"""

TASKS = {"classification": "tabular_classification", "regression": "tabular_regression", "forecasting": "time_series_forecasting"}


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {task: render(tmp_path_factory.mktemp(task) / "metrics_project", setup=False, project_name="metrics_project",
                         task_family=family, logger="csv")
            for task, family in TASKS.items()}


def run(project: Path, code: str, tag: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=project, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith(tag))[len(tag):])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_metrics_equal_sklearn_on_random_predictions(projects, task):
    for name, case in run(projects[task], RANDOM, "metrics: ", task).items():
        assert case["got"].keys() == case["want"].keys(), name
        for key, want in case["want"].items():
            assert case["got"][key] == pytest.approx(want, abs=1e-6), (name, key)


@pytest.mark.parametrize("task", list(TASKS))
def test_validate_logs_each_metric_as_sklearn_computes_it_on_the_module_predictions(projects, task):
    result = run(projects[task], VALIDATE, "validate: ")
    assert result["n"] > 0
    names = {"val/loss", *result["want"]}
    assert set(result["logged"]) == names
    for key, want in result["want"].items():
        assert result["logged"][key] == pytest.approx(want, rel=1e-5, abs=1e-6), key
