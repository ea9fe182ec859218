"""The generated TaskModule's metrics are torchmetrics' and equal scikit-learn's on the same predictions.

Two checks per task, each in the project's own code (rendered with the real copier, run in a fresh
interpreter from the project root, as its scripts run):
- random predictions, fed in batches to `build_metrics(...)`: the epoch-level values equal sklearn's
  accuracy_score, f1_score(average="macro"), roc_auc_score(multi_class="ovr"), mean_absolute_error,
  root_mean_squared_error and mean_absolute_percentage_error on all of them, to 1e-6;
- `Trainer.validate` on the mini data: every `val/<name>` the module logs equals sklearn's value on the
  module's own predictions (de-standardised for regression); it logs exactly these and `val/loss`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..helpers import render

CODE = """
import json, sys
import lightning as L, torch
sys.path.insert(0, "src")
from sklearn import metrics as sk
from metrics_project.config import load_config
from metrics_project.models.module import TASK, build_metrics
from metrics_project.train import build


def classification(probs, y):
    p, t = probs.double().numpy(), y.numpy()
    score = p[:, 1] if p.shape[1] == 2 else p  # sklearn's binary form takes the positive class's score
    return {"acc": sk.accuracy_score(t, p.argmax(1)), "f1": sk.f1_score(t, p.argmax(1), average="macro"),
            "auroc": sk.roc_auc_score(t, score, multi_class="ovr")}


def regression(pred, y):
    p, t = pred.double().numpy().ravel(), y.double().numpy().ravel()
    return {"mae": sk.mean_absolute_error(t, p), "rmse": sk.root_mean_squared_error(t, p),
            "mape": sk.mean_absolute_percentage_error(t, p)}


def batched(metrics, pred, y):
    for lo in range(0, len(y), 128):  # one update per batch, as the val/test steps do
        metrics.update(pred[lo:lo + 128], y[lo:lo + 128])
    return {k: float(v) for k, v in metrics.compute().items()}


torch.manual_seed(0)
cases = {}
if TASK == "classification":
    for classes in (2, 5):
        y = torch.randint(0, classes, (1000,))
        probs = torch.randn(1000, classes).mul(2).softmax(dim=1)
        cases[f"{classes} classes"] = {"got": batched(build_metrics(classes), probs, y), "want": classification(probs, y)}
else:
    y = torch.rand(1000, 4) * 3 + 0.5  # away from 0: MAPE divides by the target
    pred = y + torch.randn(1000, 4) * 0.3
    cases["4 outputs"] = {"got": batched(build_metrics(), pred, y), "want": regression(pred, y)}

cfg = load_config(["logger=csv"])
datamodule, module = build(cfg)
trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
trainer.validate(module, datamodule=datamodule, verbose=False)
logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
module.eval()
with torch.no_grad():
    outs, ys = zip(*((module(x), y) for x, y in datamodule.val_dataloader()))
out, y = torch.cat(outs), torch.cat(ys)
if TASK == "classification":
    want = classification(out.softmax(dim=1), y)
else:
    want = regression(module.to_target_units(out.view_as(y)), module.to_target_units(y))
validate = {"logged": logged, "want": {f"val/{k}": v for k, v in want.items()}, "n": len(y)}
print("metrics:", json.dumps({"random": cases, "validate": validate}))
"""

TASKS = {"classification": "tabular_classification", "regression": "tabular_regression", "forecasting": "time_series_forecasting"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Per task: the project's metrics on random predictions and after Trainer.validate, with sklearn's."""
    out = {}
    for task, family in TASKS.items():
        project = render(tmp_path_factory.mktemp(task) / "metrics_project", setup=False, project_name="metrics_project",
                         task_family=family, logger="csv")
        done = subprocess.run([sys.executable, "-c", CODE], cwd=project, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        out[task] = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("metrics: "))[len("metrics: "):])
    return out


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_metrics_equal_sklearn_on_random_predictions(results, task):
    for name, case in results[task]["random"].items():
        assert case["got"].keys() == case["want"].keys(), name
        for key, want in case["want"].items():
            assert case["got"][key] == pytest.approx(want, abs=1e-6), (name, key)


@pytest.mark.parametrize("task", list(TASKS))
def test_validate_logs_each_metric_as_sklearn_computes_it_on_the_module_predictions(results, task):
    validate = results[task]["validate"]
    assert validate["n"] > 0
    assert set(validate["logged"]) == {"val/loss", *validate["want"]}
    for key, want in validate["want"].items():
        assert validate["logged"][key] == pytest.approx(want, rel=1e-6, abs=1e-6), key
