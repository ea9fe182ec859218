"""Stage B4: full_train_guidance.md and launch scripts, from tech.md's estimates and the measured run.

    python -m validators guidance          # nox -s guidance; writes the document and scripts/launch_*.sh
    rule_guidance(project)                 # B4 gate: figures agree with tech.md, scripts parse, configs load

Every figure comes from a formula of `resources.py` applied to tech.md's front matter (measured
parameters, activations and FLOPs of the chosen model, the hardware, the assumptions) or from the
1-epoch run's summary (`measured`: step time and memory per sample). The per-device batch ceiling
is the largest power of two whose estimated training memory fits 90% of the GPU's memory.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..artifacts import FULL_TRAINING, GUIDANCE, LAUNCH_SLURM, LAUNCH_TORCHRUN, TECH
from ..config_edit import ConfigEdit
from ..errors import GateError
from ..frontmatter import join
from ..project import Project
from ..resources import BYTES_PER_PARAM, CONTEXT_GB, estimate

DOC = GUIDANCE.path
MEMORY_HEADROOM = 0.9          # keep 10% of the GPU's memory for fragmentation and spikes
MAX_BATCH = 8192               # beyond this, optimisation rather than memory limits the batch
NODES, GPUS_PER_NODE = 2, 4    # the multi-node example (change in the scripts' #SBATCH lines)
WARMUP_FRACTION = 0.05         # linear warmup over 5% of the steps for large effective batches
LARGE_BATCH = 1024             # effective batch above which warmup is advised (Goyal et al. 2017)
SCRIPTS = {"slurm": LAUNCH_SLURM.path, "torchrun": LAUNCH_TORCHRUN.path}
EXPERIMENT = FULL_TRAINING.path
EXPERIMENT_NAME = Path(EXPERIMENT).stem      # `experiment=full_ddp`
AUGMENTATION = {
    "image_classification": ["random resized crop, scale 0.8-1.0", "rotation up to 10 degrees",
                             "horizontal flip only if the classes are mirror-invariant (not digits or text)",
                             "colour jitter 0.2 for RGB data", "mixup/cutmix (alpha 0.2) for the larger model"],
    "text_classification": ["random token dropout 10%", "random swap of adjacent tokens 5%",
                            "back-translation prepared offline (no network at training time)"],
    "tabular_classification": ["none by default: tabular features rarely tolerate invented values",
                               "Gaussian noise sigma 0.01-0.05 on standardised features", "class-balanced sampling if classes are skewed"],
    "tabular_regression": ["none by default", "Gaussian noise sigma 0.01-0.05 on standardised features"],
    "time_series_forecasting": ["jitter: noise sigma 0.01-0.03 of the series' std", "magnitude scaling +-10%",
                                "window slicing; never shuffle across the validation/test boundary"],
}
MONITORING = [
    "train/loss and val/loss per epoch (CSV or W&B): divergence or a widening gap means overfitting",
    "the validation metric of the task ({metric}) at every epoch; best checkpoint by val/loss",
    "learning rate per step (add lightning's LearningRateMonitor) to confirm warmup and cosine decay",
    "gradient norm (trainer.gradient_clip_val caps it): spikes precede NaN losses",
    "GPU memory (torch.cuda.max_memory_allocated, nvidia-smi) against the estimate of {memory} GB per device",
    "step time against the measured {step} s per step on the validation machine; a slower step means data-loading stalls",
    "checkpoints written every epoch (last.ckpt) so a preempted job resumes with ckpt_path",
]


def chosen_candidate(tech: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in tech["candidates"] if c["key"] == tech["chosen"])


def precision_of(tech: dict[str, Any]) -> str:
    return str(tech["assumptions"]["precision"])


def max_batch(candidate: dict[str, Any], tech: dict[str, Any], measured_mb: float | None) -> int:
    """The largest power-of-two per-device batch whose estimated memory fits the headroom."""
    hw, precision = tech["hardware"], precision_of(tech)
    act_bytes = 2 if "mixed" in precision or precision.startswith(("16", "bf16")) else 4
    params = candidate.get("params_with_weights") or candidate["params"]  # a text encoder: its weights' vocabulary
    budget = MEMORY_HEADROOM * hw["memory_gb"] * 1e9 - BYTES_PER_PARAM * params - (CONTEXT_GB * 1e9 if hw["name"] != "CPU" else 0)
    per_sample = act_bytes * max(candidate["activations_per_sample"], 1)
    if measured_mb:  # the run's own figure, when it is the larger (more cautious) one
        per_sample = max(per_sample, measured_mb * 2**20)
    fit = max(int(budget // per_sample), 1)
    cap = min(fit, MAX_BATCH, int(tech["assumptions"]["full_samples"]))
    return 2 ** int(math.log2(max(cap, 1)))


def plan(project: Project) -> dict[str, Any]:
    """The guidance's data (the front matter)."""
    tech, errors = project.front(TECH.path)
    if tech is None:
        raise errors[0]
    cand, hw, a = chosen_candidate(tech), tech["hardware"], tech["assumptions"]
    if cand["params"] is None:
        raise GateError(TECH.path, "candidates.params", None, "measured figures for the chosen model",
                        "regenerate tech.md with torch installed next to copier")
    source, summary = project.run_summary(needs="measured")
    measured = summary.get("measured") or {}
    top = max_batch(cand, tech, measured.get("memory_per_sample_mb") or None)
    recommended = min(int(a["batch_size"]), top)
    low = max(1, min(32, recommended // 4))
    base_lr = float(ConfigEdit(project).value("optim.lr") or 1e-3)

    def scaled(batch: int) -> float:
        return float(f"{base_lr * batch / recommended:.3g}")  # linear scaling rule (Goyal et al. 2017)

    def figures(batch: int, epochs: int) -> dict[str, Any]:
        return {"batch_size": batch, "epochs": epochs, "precision": precision_of(tech), "samples": int(a["full_samples"]),
                **estimate(cand, hw, batch_size=batch, epochs=epochs, samples=int(a["full_samples"]), precision=precision_of(tech))}

    steps = math.ceil(int(a["full_samples"]) / recommended)
    world = NODES * GPUS_PER_NODE
    at_tech = figures(int(a["batch_size"]), int(a["epochs"]))
    return {
        "schema_version": 1, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "family": tech["family"],
        "model": tech["chosen"], "hardware": {k: hw[k] for k in ("name", "memory_gb", "source")},
        "measured": {"source": source, **measured} if source else {"source": None},
        "batch_size": {"min": low, "max": top, "recommended": recommended,
                       "rule": f"per device; estimated memory at max <= {MEMORY_HEADROOM:.0%} of {hw['memory_gb']} GB"},
        "learning_rate": {"base": base_lr, "at_batch": recommended, "min": scaled(low), "max": scaled(top),
                          "multi_node": scaled(recommended * world), "schedule": "cosine decay per step to 0 (optim.scheduler=cosine)",
                          "warmup_steps": math.ceil(WARMUP_FRACTION * steps * int(a["epochs"])) if recommended * world > LARGE_BATCH else 0},
        "epochs": {"min": max(1, int(a["epochs"]) // 2), "recommended": int(a["epochs"]), "max": int(a["epochs"]) * 3,
                   "early_stopping_patience": 5},
        "estimates": at_tech,
        "estimates_at_max_batch": figures(top, int(a["epochs"])),
        "measured_epoch_hours": round(measured["step_time_s"] * steps / 3600, 4) if measured.get("step_time_s") else None,
        "checkpoint": {"monitor": "val/loss", "mode": "min", "save_top_k": 1, "save_last": True,
                       "resume": "python scripts/train.py ... with Trainer.fit(ckpt_path='runs/<run>/checkpoints/last.ckpt')"},
        "augmentation": AUGMENTATION[tech["family"]],
        "distributed": {"nodes": NODES, "gpus_per_node": GPUS_PER_NODE, "strategies": ["ddp", "fsdp"],
                        "effective_batch": recommended * world,
                        "hours_on_example_cluster": float(f"{at_tech['train_hours'] / world:.3g}") if at_tech["train_hours"] is not None else None,
                        "scripts": dict(SCRIPTS), "experiment": EXPERIMENT},
        "monitoring": [m.format(metric="val/acc" if "classification" in tech["family"] else "val/mae",
                                memory=at_tech["train_memory_gb"], step=measured.get("step_time_s", "n/a")) for m in MONITORING],
    }


def experiment(data: dict[str, Any]) -> str:
    """configs/experiment/full_ddp.yaml: the multi-node setup the launch scripts run (`experiment=full_ddp`)."""
    b, lr, dist = data["batch_size"]["recommended"], data["learning_rate"]["multi_node"], data["distributed"]
    rows = [("defaults:", ""), ("  data: full", "configs/data/full.yaml: your dataset under data/full/"),
            ("  trainer: ddp_gpu", "one process per GPU (Lightning DDP); STRATEGY=fsdp in the scripts shards instead"),
            ("trainer:", ""), (f"  num_nodes: {NODES}", "nodes (match #SBATCH --nodes)"),
            (f"  devices: {GPUS_PER_NODE}", "GPUs per node (match #SBATCH --ntasks-per-node and --gres)"),
            ("data:", ""), (f"  batch_size: {b}", f"per device: effective batch {dist['effective_batch']}"),
            ("optim:", ""), (f"  lr: {lr}", "scaled linearly with the effective batch"),
            ("run:", ""), (f"  name: {EXPERIMENT_NAME}", f"its runs are runs/<UTC timestamp>-{EXPERIMENT_NAME}/")]
    head = (f"# Full training on {NODES} nodes x {GPUS_PER_NODE} GPUs, written by `nox -s guidance` from {DOC}.\n"
            f"# Yours to edit (project-owned; guidance rewrites it). Run: python scripts/train.py experiment={EXPERIMENT_NAME}\n")
    return head + "".join(f"{key:<32} # {why}\n" if why else f"{key}\n" for key, why in rows)


def overrides(data: dict[str, Any]) -> str:
    return f"experiment={EXPERIMENT_NAME}"


def scripts(data: dict[str, Any], package: str) -> dict[str, str]:
    head = ("#!/usr/bin/env bash\n# Written by `nox -s guidance` (full_train_guidance.md). STRATEGY=fsdp shards parameters,\n"
            "# gradients and optimizer state across GPUs (for models that do not fit one GPU); ddp replicates them.\n"
            "set -euo pipefail\n")
    body = (f'OVERRIDES="{overrides(data)}"   # {EXPERIMENT}; add key=value overrides here\nSTRATEGY="${{STRATEGY:-ddp}}"\n'
            'PYTHON="${PYTHON:-.venvs/debug-gpu/bin/python}"\nexport WANDB_MODE=offline\n'
            "# Every process of the job writes into one run folder: set once here, inherited by every rank.\n"
            f'export HEPHAESTUS_RUN_DIR="${{HEPHAESTUS_RUN_DIR:-runs/$(date -u +%Y%m%dT%H%M%SZ)-{EXPERIMENT_NAME}}}"\n')
    slurm = (head.replace("set -euo", f"#SBATCH --job-name={package}\n#SBATCH --nodes={NODES}\n"
                          f"#SBATCH --ntasks-per-node={GPUS_PER_NODE}\n#SBATCH --gres=gpu:{GPUS_PER_NODE}\n"
                          "#SBATCH --cpus-per-task=8\n#SBATCH --time=24:00:00\nset -euo")
             + body + "# Lightning reads the SLURM environment: one task per GPU, srun starts them all.\n"
             'srun "$PYTHON" scripts/train.py $OVERRIDES trainer.strategy="$STRATEGY"\n')
    torchrun = (head + body + 'NNODES="${NNODES:-' + str(NODES) + '}"\nNODE_RANK="${NODE_RANK:-0}"\n'
                'MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"\n'
                "# Run on every node with its NODE_RANK; MASTER_ADDR is node 0; give every node the same HEPHAESTUS_RUN_DIR.\n"
                f'"$PYTHON" -m torch.distributed.run --nnodes="$NNODES" --nproc_per_node={GPUS_PER_NODE} '
                '--node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port=29500 \\\n'
                '    scripts/train.py $OVERRIDES trainer.strategy="$STRATEGY"\n')
    return {SCRIPTS["slurm"]: slurm, SCRIPTS["torchrun"]: torchrun}


def render(data: dict[str, Any]) -> str:
    b, lr, e, est, dist = data["batch_size"], data["learning_rate"], data["epochs"], data["estimates"], data["distributed"]
    m = data["measured"]
    lines = [f"# Full-training guidance: {data['model']} ({data['family']})", "",
             f"From tech.md (hardware: {data['hardware']['name']}, {data['hardware']['memory_gb']} GB; "
             f"{data['hardware']['source']}) and the measured 1-epoch run ({m['source'] or 'not run yet: run nox -s bugfix'}).", "",
             "## Batch size, learning rate, epochs", "",
             "| setting | min | recommended | max |", "|---|---:|---:|---:|",
             f"| batch size per device | {b['min']} | {b['recommended']} | {b['max']} |",
             f"| learning rate (linear scaling) | {lr['min']} | {lr['base']} | {lr['max']} |",
             f"| epochs | {e['min']} | {e['recommended']} | {e['max']} |", "",
             f"Schedule: {lr['schedule']}; warmup {lr['warmup_steps']} steps; early stopping after "
             f"{e['early_stopping_patience']} epochs without a better val/loss. The batch ceiling: {b['rule']}.", "",
             "## Resources (resources.py formulas, tech.md's figures)", "",
             f"- at batch {est['batch_size']}, {est['epochs']} epochs, {est['samples']} samples, {est['precision']}: "
             f"{est['train_memory_gb']} GB per device, {est['train_hours']} h on one {data['hardware']['name']}",
             f"- at the maximum batch {data['estimates_at_max_batch']['batch_size']}: {data['estimates_at_max_batch']['train_memory_gb']} GB",
             f"- measured: {m.get('step_time_s', 'n/a')} s per step, {m.get('memory_per_sample_mb', 'n/a')} MB per sample "
             f"on {m.get('device', 'n/a')}; one full epoch there: {data['measured_epoch_hours']} h", "",
             "## Checkpoints", "",
             f"Best by {data['checkpoint']['monitor']} ({data['checkpoint']['mode']}), top {data['checkpoint']['save_top_k']}, "
             f"plus last.ckpt every epoch; resume: {data['checkpoint']['resume']}.", "",
             "## Augmentation", "", *[f"- {a}" for a in data["augmentation"]], "",
             "## Multi-GPU and multi-node (Lightning DDP / FSDP)", "",
             f"Example: {dist['nodes']} nodes x {dist['gpus_per_node']} GPUs, effective batch {dist['effective_batch']}, "
             f"learning rate {lr['multi_node']}, about {dist['hours_on_example_cluster']} h if scaling is linear.",
             "`trainer=ddp_gpu` replicates the model (DDP); `STRATEGY=fsdp` shards it (FSDP).", "",
             "| hardware | launch |", "|---|---|",
             "| 1 GPU | `python scripts/train.py data=full trainer=gpu` |",
             f"| 1 node, {dist['gpus_per_node']} GPUs | `python scripts/train.py data=full trainer=ddp_gpu trainer.devices={dist['gpus_per_node']}` |",
             f"| {dist['nodes']} nodes, SLURM | `sbatch {dist['scripts']['slurm']}` (`STRATEGY=fsdp sbatch ...` for FSDP) |",
             f"| {dist['nodes']} nodes, torchrun | `NODE_RANK=<i> MASTER_ADDR=<node0> bash {dist['scripts']['torchrun']}` on each node |",
             "", "## Monitoring", "", *[f"- {item}" for item in data["monitoring"]], ""]
    return "\n".join(lines)


def write(project: Project) -> dict[str, Any]:
    data = plan(project)
    project.write_text(EXPERIMENT, experiment(data))
    for rel, text in scripts(data, project.package).items():
        path = project.root / rel
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    project.write_text(DOC, join(data, render(data)))
    return data


def rule_guidance(project: Project) -> Iterator[GateError]:
    doc, errors = project.validated(DOC, "full_train_guidance")
    tech, tech_errors = project.front(TECH.path)
    if doc is None or tech is None:
        yield from errors + tech_errors
        return
    cand, a = chosen_candidate(tech), tech["assumptions"]
    hint = "regenerate it: nox -s guidance (after any change to tech.md)"
    if doc["model"] != tech["chosen"]:
        yield GateError(DOC, "model", doc["model"], f"tech.md's chosen model {tech['chosen']!r}", hint)
    for key in ("train_memory_gb", "train_hours"):
        if doc["estimates"][key] != cand[key]:
            yield GateError(DOC, f"estimates.{key}", doc["estimates"][key], f"{cand[key]} as in tech.md", hint)
    for key, want in (("batch_size", a["batch_size"]), ("epochs", a["epochs"]), ("samples", a["full_samples"])):
        if doc["estimates"][key] != want:
            yield GateError(DOC, f"estimates.{key}", doc["estimates"][key], f"{want} (tech.md assumptions)", hint)
    top = doc["estimates_at_max_batch"]
    if top["train_memory_gb"] is not None and top["train_memory_gb"] > tech["hardware"]["memory_gb"]:
        yield GateError(DOC, "batch_size.max", doc["batch_size"]["max"],
                        f"a batch whose estimated memory fits {tech['hardware']['memory_gb']} GB", hint)
    if not doc["batch_size"]["min"] <= doc["batch_size"]["recommended"] <= doc["batch_size"]["max"]:
        yield GateError(DOC, "batch_size", doc["batch_size"], "min <= recommended <= max", hint)
    yield from script_errors(project, doc)


CONFIG_PROBE = """
import json, sys
sys.path.insert(0, "src")
from {package}.config import load_config
for overrides in json.loads(sys.argv[1]):
    try:
        load_config(overrides)
        print("ok")
    except Exception as err:
        print(f"{{type(err).__name__}}: {{err}}".splitlines()[0])
"""


def script_errors(project: Project, doc: dict[str, Any]) -> Iterator[GateError]:
    """Each launch script passes `bash -n`, and its overrides compose (DDP and FSDP) with the project's config."""
    import re
    import sys

    probes: list[tuple[str, str, list[str]]] = []
    for rel in doc["distributed"]["scripts"].values():
        path = project.root / rel
        if not path.is_file():
            yield GateError(rel, "", None, "the launch script to exist", "nox -s guidance writes it")
            continue
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        if check.returncode != 0:
            yield GateError(rel, "", check.stderr.strip()[:200], "a script that passes `bash -n`", "fix the shell syntax")
        m = re.search(r'^OVERRIDES="([^"]*)"', path.read_text(encoding="utf-8"), re.MULTILINE)
        if m is None:
            yield GateError(rel, "OVERRIDES", None, 'an OVERRIDES="..." line', "nox -s guidance writes it")
            continue
        probes += [(rel, m.group(1), [*m.group(1).split(), f"trainer.strategy={s}"]) for s in doc["distributed"]["strategies"]]
    if not probes:
        return
    done = subprocess.run([sys.executable, "-c", CONFIG_PROBE.format(package=project.package),
                           json.dumps([p[2] for p in probes])], cwd=project.root, capture_output=True, text=True, timeout=300)
    results = done.stdout.splitlines()
    for n, (rel, line, overrides) in enumerate(probes):
        result = results[n] if n < len(results) else (done.stderr.strip().splitlines() or ["no output"])[-1]
        if result != "ok":
            yield GateError(rel, "OVERRIDES", line, f"overrides that compose with {overrides[-1]}", result[:200])
