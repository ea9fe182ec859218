"""Stage D6: one run's results: metrics, curves, the table against the requirement's SLA, the config diff.

    target = resolve(root, "slurm-42")          # RUN (runs/<name>, its name; default runs/latest) or a job id
    results, series = collect(project, target)  # metrics from W&B when synced and WANDB_API_KEY is set, else the CSV log
    folder = write(project, results, series)    # reports/results/<run>/: summary.md, results.json, figures.json, *.png

`results.json` (the machine-readable copy, read by stage D7's notes) holds: run, run_dir, source
(`csv` or `wandb`), source_note, metrics {name: {final, best, step (of the final value), best_step, goal}},
figures (PNG names, relative to the folder), sla (rows: item, metric, target, bound, measured, best,
verdict, note), job {backend, id, url, state} or null, commit, config_hash, run_url, config_diff
({dotted key: {default, run}} or null) and config_note. `figures.json` holds each figure's lines as the
Line2D objects drew them.

The job is the cluster wing's ledger entry whose run folder this is (validators/job_ledger.py); the W&B
run URL comes from the sync agent's ledger (runs.sync.sqlite, rows of files under runs/<run>/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .. import job_ledger
from ..artifacts import LATEST, REQUIREMENTS, RESULTS, RUNS
from ..errors import ClusterError, HephaestusError
from ..job_ledger import JobRecord
from ..project import Project
from ..sla import verdict
from .figures import draw
from .metrics import MetricsError, Series, csv_files, from_csv, from_rows
from .sync_ledger import DONE, SyncLedger, default_path

TRAIN_SCRIPT = "scripts/train.py"
CONFIG_FILE = "config.yaml"
# The SLA items of requirements.md, what measures each and how: (item, metric family, bound, scale to the target's unit).
QUALITY = (("accuracy_pct", "acc", "at least", 100.0), ("f1_pct", "f1", "at least", 100.0))
SERVED = {"latency_ms": "measured by the deployed service (nox -s deploy, monitor), not by training",
          "throughput_per_s": "measured by the deployed service (nox -s deploy, monitor), not by training"}


class ResultsError(HephaestusError):
    """The results cannot be made: which run, what is missing, what to do."""


@dataclass(frozen=True)
class Target:
    run_dir: Path             # absolute
    name: str                 # the run folder's name: reports/results/<name>/
    job: JobRecord | None


def resolve(root: Path, ident: str | None) -> Target:
    """RUN (a run folder, or its name under runs/; None: runs/latest) or JOB (`<backend>-<id>` or the bare id)."""
    runs = root / RUNS.path
    candidates = [root / LATEST.path] if ident is None else [root / ident, runs / ident]  # an absolute path: root / it is it
    found = next((p for p in candidates if p.is_dir()), None)
    job = None
    if found is None and ident is not None:
        try:
            job = job_ledger.find(root, ident)
        except ClusterError as err:
            raise ResultsError(f"{ident!r} is neither a run folder (runs/<name>) nor a known job: {err}") from None
        found = root / job.run_dir
        if not found.is_dir():
            raise ResultsError(f"job {job.key}: its run folder {job.run_dir} does not exist (state {job.state}): "
                               "the job has not started, or its folder is on the cluster; copy it back first")
    if found is None:
        raise ResultsError(f"no run yet: {LATEST.path} does not exist (train first: python scripts/train.py, or nox -s submit)")
    run_dir = found.resolve()
    if job is None:
        job = next((r for r in job_ledger.load_all(root) if (root / r.run_dir).resolve() == run_dir), None)
    return Target(run_dir, run_dir.name, job)


def run_url(root: Path, name: str) -> str:
    """The W&B page of the run, when the sync agent synced it (its ledger beside runs/); '' otherwise."""
    path = default_path(root / RUNS.path)
    if not path.is_file():
        return ""
    with SyncLedger.open(path) as ledger:
        rows = [r for r in ledger.rows() if r.run_path.startswith(f"{name}/") and r.url and r.state in DONE]
    return rows[-1].url if rows else ""


def wandb_rows(url: str, api_key: str, base_url: str | None = None) -> list[dict[str, Any]]:
    """Every history row of the W&B run at `url` through W&B's public API (GraphQL `RunFullHistory`, all rows:
    `samples` is the run's row count, so none are dropped by sampling)."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) < 4 or parts[-2] != "runs":
        raise ResultsError(f"{url}: not a W&B run URL (<host>/<entity>/<project>/runs/<id>)")
    host = urlsplit(url)
    base = base_url or ("https://api.wandb.ai" if host.hostname in ("wandb.ai", "app.wandb.ai")
                        else f"{host.scheme}://{host.netloc}")
    import wandb

    run = wandb.Api(overrides={"base_url": base}, api_key=api_key, timeout=60).run("/".join(parts[-4:-2] + parts[-1:]))
    return list(run.history(samples=max(int(run.lastHistoryStep) + 1, 1), pandas=False))


Fetch = Callable[[str, str, str | None], list[dict[str, Any]]]


def metric_series(target: Target, url: str, env: Mapping[str, str],
                  fetch: Fetch = wandb_rows) -> tuple[dict[str, Series], str, str]:
    """(series, source, note): W&B when the run is synced and WANDB_API_KEY is set, else (or when that fails) the CSV log."""
    key = env.get("WANDB_API_KEY", "")
    note = ""
    if url and key:
        try:
            series = from_rows(fetch(url, key, env.get("WANDB_BASE_URL") or None))
            if series:
                return series, "wandb", f"run {url}"
            note = f"W&B has no history rows for {url}; "
        except Exception as err:  # noqa: BLE001 - any failure of the remote side falls back to the local log
            note = f"W&B API failed for {url} ({type(err).__name__}: {str(err).replace(key, '***')[:200]}); "
    elif url:
        note = "synced, but WANDB_API_KEY is not set; "
    files = csv_files(target.run_dir)
    try:
        series = from_csv(target.run_dir)
    except MetricsError as err:
        raise ResultsError(f"{err} (hint: the run's CSV log is written by Lightning's CSVLogger; restore it)") from None
    shown = ", ".join(p.relative_to(target.run_dir).as_posix() for p in files)
    return series, "csv", note + (shown or "no csv/metrics.csv")


def sla_rows(project: Project, series: dict[str, Series]) -> tuple[list[dict[str, Any]], str]:
    """One row per SLA item of requirements.md against the run's final test (else val) metric; and a note."""
    req, errors = project.validated(REQUIREMENTS.path, REQUIREMENTS.schema)
    if req is None:
        return [], f"no SLA table: {errors[0]}"
    sla = req["sla"]
    wanted = [(item, family, bound, scale, sla[item]) for item, family, bound, scale in QUALITY]
    if sla.get("error_metric"):
        wanted.append(("error_metric", str(sla["error_metric"]["name"]).lower(), "at most", 1.0, sla["error_metric"]["value"]))
    rows = []
    for item, family, bound, scale, target in wanted:
        found = next((series[f"{stage}/{family}"] for stage in ("test", "val") if f"{stage}/{family}" in series), None)
        measured = None if found is None else round(found.final.value * scale, 4)
        best = None if found is None else round(found.best.value * scale, 4)
        rows.append({"item": item, "metric": found.name if found else f"test/{family}", "target": target, "bound": bound,
                     "measured": measured, "best": best, "verdict": verdict(measured, target, at_most=bound == "at most"),
                     "note": "" if found or target is None else f"the run logged no test/{family} or val/{family}"})
    for item, note in SERVED.items():
        target = sla.get(item)
        rows.append({"item": item, "metric": "", "target": target, "bound": "at most" if item == "latency_ms" else "at least",
                     "measured": None, "best": None, "verdict": verdict(None, target, True), "note": note})
    return rows, ""


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        return {k: v for key, value in tree.items() for k, v in flatten(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def config_diff(root: Path, run_dir: Path) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """The run's config.yaml against `scripts/train.py --print-config` (the defaults, composed by the project itself)."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return None, f"the run has no {CONFIG_FILE}"
    done = subprocess.run([sys.executable, TRAIN_SCRIPT, "--print-config"], cwd=root, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        lines = [x for x in (done.stderr or done.stdout).splitlines() if x.strip()]
        return None, f"{TRAIN_SCRIPT} --print-config failed: {lines[-1] if lines else f'exit {done.returncode}'}"
    run, defaults = flatten(yaml.safe_load(path.read_text(encoding="utf-8"))), flatten(yaml.safe_load(done.stdout))
    diff = {k: {"default": defaults.get(k), "run": run.get(k)} for k in sorted(set(run) | set(defaults))
            if run.get(k) != defaults.get(k) or (k in run) != (k in defaults)}
    return diff, f"{CONFIG_FILE} against `{TRAIN_SCRIPT} --print-config` (no overrides)"


def collect(project: Project, target: Target, env: Mapping[str, str] | None = None,
            fetch: Fetch = wandb_rows) -> tuple[dict[str, Any], dict[str, Series]]:
    """Everything the report says, and the series to draw; a run without metrics is an error."""
    env = os.environ if env is None else env
    root = project.root
    url = run_url(root, target.name)
    series, source, note = metric_series(target, url, env, fetch)
    rel = target.run_dir.relative_to(root).as_posix() if target.run_dir.is_relative_to(root) else str(target.run_dir)
    if not series:
        raise ResultsError(f"{rel}: the run logged no metrics ({note}): nothing to report (hint: did the training reach "
                           "its first logging step? see its job log)")
    sla, sla_note = sla_rows(project, series)
    diff, config_note = config_diff(root, target.run_dir)
    job = target.job
    results = {
        "run": target.name, "run_dir": rel, "source": source, "source_note": note,
        "metrics": {name: {"final": s.final.value, "best": s.best.value, "step": s.final.step, "best_step": s.best.step,
                           "goal": s.goal} for name, s in series.items()},
        "figures": [], "sla": sla, "sla_note": sla_note,
        "job": {"backend": job.backend, "id": job.job_id, "url": job.url, "state": job.state} if job else None,
        "commit": job.commit if job else None, "config_hash": job.config_hash if job else None,
        "run_url": url or None, "config_diff": diff, "config_note": config_note,
    }
    return results, series


def folder_of(project: Project, run: str) -> Path:
    return project.path(RESULTS) / run


def write(project: Project, results: dict[str, Any], series: dict[str, Series]) -> Path:
    """reports/results/<run>/: the PNGs, figures.json, results.json and summary.md; returns the folder."""
    from .summary import markdown

    folder = folder_of(project, results["run"])
    drawn = draw(series, folder, title=results["run"])
    results["figures"] = [d.file for d in drawn]
    (folder / "figures.json").write_text(json.dumps([{"file": d.file, "family": d.family, "axis": d.axis, "lines": {
        label: {"x": x, "y": y} for label, (x, y) in d.lines.items()}} for d in drawn], indent=1) + "\n", encoding="utf-8")
    (folder / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "summary.md").write_text(markdown(results, {f: f for f in results["figures"]}), encoding="utf-8")
    return folder
