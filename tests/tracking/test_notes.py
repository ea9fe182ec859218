"""Stage D7: `python -m validators note [RUN | JOB]` and gate D7 on a tiny project folder.

The folder holds what a real run leaves: the planner's docs/plan/requirements.md and task.md (from a
project rendered once per module), a run folder with the config.yaml and summary.json of a real
1-epoch small_cnn run, a job ledger, the sync agent's ledger, and a results.json in the shape D6
writes (reports/results/<run>/results.json, the PNGs beside it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from validators import gates
from validators.errors import GateWarning
from validators.frontmatter import split
from validators.job_ledger import JobRecord, Status, save
from validators.project import Project
from validators.tracking import GATES
from validators.tracking.notes import NoteError, write
from validators.tracking.notes_gate import OPEN_DAYS, check
from validators.tracking.sync_ledger import SYNCED, SyncLedger

from ..helpers import TEMPLATE, render

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
RUN = "20261126T080415Z-small_cnn"
CONFIG = """\
model:
  name: small_cnn
  channels:
  - 32
  - 64
  dropout: 0.1
seed: 42
data:
  root: data/mini
  manifest: split.csv
  image_size: 28
  channels: 1
  num_classes: 10
  batch_size: 128
  num_workers: 0
  cache_in_memory: true
optim:
  lr: 0.001
  weight_decay: 0.0001
  scheduler: cosine
trainer:
  accelerator: cpu
  devices: 1
  num_nodes: 1
  strategy: auto
  precision: 32-true
  max_epochs: 1
  limit_train_batches: 1.0
  limit_val_batches: 1.0
  limit_test_batches: 1.0
  log_every_n_steps: 200
  gradient_clip_val: null
  accumulate_grad_batches: 1
  deterministic: false
  progress_refresh_rate: 10
logger:
  name: csv
  save_dir: .
  project: demo_project
  offline: true
  console: 'off'
checkpoint:
  dirpath: checkpoints
  monitor: val/loss
  mode: min
  save_top_k: 1
  save_last: true
run:
  root: runs
  name: null
"""
CONFIG_SHA = "47eee90b3f536fa6a33e3c5a300aa95382a2fc009ffd9bf06ea095245984d7d8"
COMMIT = "3f48e32a9d1c0b7e6f5a4d3c2b1a09f8e7d6c5b4"
JOB_HASH = "9" * 64
WANDB_URL = "https://wandb.example/team/demo_project/runs/2yx8dez7"


def summary(run: str, acc: float = 0.111111) -> dict:
    return {"model": "small_cnn", "run_dir": f"runs/{run}", "epochs": 1, "global_step": 4, "world_size": 1,
            "resumed_from": None, "metrics": {"test/acc": acc, "test/loss": 2.299357},
            "best_checkpoint": f"runs/{run}/checkpoints/best-epoch000.ckpt",
            "last_checkpoint": f"runs/{run}/checkpoints/last.ckpt", "log_dir": f"runs/{run}/csv",
            "measured": {"device": "cpu", "batch_size": 128, "fit_seconds": 1.99}}


def add_run(root: Path, run: str = RUN, acc: float = 0.111111, latest: bool = True) -> Path:
    folder = root / "runs" / run
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")
    (folder / "summary.json").write_text(json.dumps(summary(run, acc), indent=2) + "\n", encoding="utf-8")
    if latest:
        link = root / "runs" / "latest"
        link.unlink(missing_ok=True)
        link.symlink_to(run)
    return folder


def add_results(root: Path, run: str = RUN) -> Path:
    """reports/results/<run>/results.json as D6 writes it, with its two PNGs."""
    folder = root / "reports" / "results" / run
    folder.mkdir(parents=True)
    for name in ("loss.png", "val_acc.png"):
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    results = {
        "run": run, "source": "csv",
        "metrics": {"train/loss": {"final": 2.3597798347473145, "best": 2.3597798347473145, "step": 3},
                    "val/acc": {"final": 0.12222222238779068, "best": 0.12222222238779068, "step": 3},
                    "val/loss": {"final": 2.298017978668213, "best": 2.298017978668213, "step": 3}},
        "figures": ["loss.png", "val_acc.png"],
        "sla": [{"requirement": "accuracy_pct", "target": ">= 95", "measured": 11.1111, "status": "not met"}],
        "job": {"backend": "slurm", "id": "4242", "url": "https://slurm.example/jobs/4242"},
        "commit": COMMIT, "config_hash": JOB_HASH, "run_url": WANDB_URL,
        "config_diff": {"trainer.max_epochs": {"default": 10, "value": 1}},
    }
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return folder


def add_job(root: Path, run: str = RUN) -> JobRecord:
    record = JobRecord(backend="slurm", job_id="4242", name="small_cnn", command="python scripts/train.py trainer.max_epochs=1",
                       commit=COMMIT, dirty=False, config_hash=JOB_HASH, run_dir=f"runs/{run}", log_path="jobs/slurm-4242.log",
                       url="https://slurm.example/jobs/4242", submitted_at="2026-11-26T08:04:00Z",
                       train_args=["trainer.max_epochs=1"])
    record.observe(Status("COMPLETED", "COMPLETED"), at="2026-11-26T08:05:00Z")
    save(root, record)
    return record


def add_synced(root: Path, run: str = RUN) -> None:
    with SyncLedger.open(root / "runs.sync.sqlite") as ledger:
        row = ledger.add(f"{run}/wandb/offline-run-20261126_080415-2yx8dez7/run-2yx8dez7.wandb", "2yx8dez7", 1024, "ab" * 32, True)
        ledger.update(row, state=SYNCED, url=WANDB_URL, synced_at="2026-11-26T08:10:00Z")


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/plan/ of a project rendered from the committed template with its defaults."""
    return render(tmp_path_factory.mktemp("rendered") / "demo", setup=False) / "docs" / "plan"


@pytest.fixture
def project(tmp_path: Path, plan: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(plan, root / "docs" / "plan")
    return root


def note_of(root: Path) -> tuple[str, dict, str]:
    paths = sorted(p for p in (root / "notes").glob("*.md") if p.name != "index.md")
    assert len(paths) == 1
    text = paths[0].read_text(encoding="utf-8")
    meta, body = split(text)
    return text, meta, body


QUESTION = ("Classify handwritten digits from small grayscale scans. Inference must stay under 20 ms per image on a CPU "
            "and accuracy should exceed 95%.")
CONFIG_ROWS = """\
| key | value |
|---|---|
| `model.name` | `small_cnn` |
| `model.channels` | `[32, 64]` |
| `model.dropout` | `0.1` |
| `data.root` | `data/mini` |
| `data.batch_size` | `128` |
| `optim.lr` | `0.001` |
| `optim.weight_decay` | `0.0001` |
| `optim.scheduler` | `cosine` |
| `trainer.accelerator` | `cpu` |
| `trainer.devices` | `1` |
| `trainer.num_nodes` | `1` |
| `trainer.strategy` | `auto` |
| `trainer.precision` | `32-true` |
| `trainer.max_epochs` | `1` |
| `seed` | `42` |
"""
KEY_CONFIG = {"model": {"name": "small_cnn", "channels": [32, 64], "dropout": 0.1},
              "data": {"root": "data/mini", "batch_size": 128},
              "optim": {"lr": 0.001, "weight_decay": 0.0001, "scheduler": "cosine"},
              "trainer": {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto", "precision": "32-true",
                          "max_epochs": 1},
              "seed": 42}
RESULTS_SECTION = f"""\
Metrics from the csv log (reports/results/{RUN}/summary.md has the full report):

| metric | final | best | step |
|---|---|---|---|
| `train/loss` | 2.35978 | 2.35978 | 3 |
| `val/acc` | 0.122222 | 0.122222 | 3 |
| `val/loss` | 2.29802 | 2.29802 | 3 |
| `test/acc` | 0.111111 | - | - |
| `test/loss` | 2.29936 | - | - |

Against the requirement's SLA:

| requirement | target | measured | status |
|---|---|---|---|
| accuracy_pct | >= 95 | 11.1111 | not met |

![loss](../reports/results/{RUN}/loss.png)

![val_acc](../reports/results/{RUN}/val_acc.png)
"""
JOB_FACTS = f"""\
- job: `slurm-4242` on slurm, state COMPLETED, [platform page](https://slurm.example/jobs/4242); overrides: `trainer.max_epochs=1`
- commit: `{COMMIT}`; config sha256: `{JOB_HASH}`
- W&B: [run page]({WANDB_URL})
"""


def test_a_note_from_the_run_folder_alone(project: Path) -> None:
    """No job, no sync, no results.json: the note is written from config.yaml and summary.json, and says what adds the rest."""
    add_run(project)
    path, created = write(Project(project), None, now=NOW)
    assert (path.relative_to(project).as_posix(), created) == ("notes/20261126-small-cnn.md", True)
    assert path.read_text(encoding="utf-8") == f"""\
---
schema_version: 1
id: 20261126-small-cnn
title: small_cnn on mini, 1 epoch, lr 0.001
created: '2026-11-26T09:30:00Z'
run: runs/{RUN}
question: Classify handwritten digits from small grayscale scans. Inference must stay under 20 ms per
  image on a CPU and accuracy should exceed 95%.
job_id: null
backend: null
job_url: null
run_url: null
commit: null
config_hash: {CONFIG_SHA}
config:
  model:
    name: small_cnn
    channels:
    - 32
    - 64
    dropout: 0.1
  data:
    root: data/mini
    batch_size: 128
  optim:
    lr: 0.001
    weight_decay: 0.0001
    scheduler: cosine
  trainer:
    accelerator: cpu
    devices: 1
    num_nodes: 1
    strategy: auto
    precision: 32-true
    max_epochs: 1
  seed: 42
metrics:
  test/acc: 0.111111
  test/loss: 2.299357
figures: []
tags:
- image_classification
- small_cnn
- mini
links: []
---

# small_cnn on mini, 1 epoch, lr 0.001

<!-- written by `nox -s note` (stage D7). Write anywhere: a later call only appends a dated revision at the end. -->

## Question

From docs/plan/requirements.md:

> {QUESTION}

Hypothesis: `small_cnn`, set up as below, meets the requirement's goals (docs/plan/task.md: `small_cnn` for image classification):

- train a Small CNN (2 conv blocks) baseline on the mini data, then on MNIST / Fashion-MNIST exported to PNG folders
- inference latency <= 20 ms per request
- accuracy >= 95% on held-out data

## Setup

- run: `runs/{RUN}`: 1 epoch(s), 4 step(s), 1 process(es)
- job: none: no `jobs/<backend>-<id>.yaml` names this run (it was not run by `nox -s submit`)
- commit: not recorded (no job ledger or results.json names it); config sha256: `{CONFIG_SHA}`
- W&B: not synced yet: `nox -s sync_agent` uploads the offline run; a later `nox -s note` records its page

Key values of `runs/{RUN}/config.yaml`:

{CONFIG_ROWS}
## Results

Metrics from `runs/{RUN}/summary.json` (the test set, after the last epoch):

| metric | final | best | step |
|---|---|---|---|
| `test/acc` | 0.111111 | - | - |
| `test/loss` | 2.29936 | - | - |

No curves yet: `nox -s results -- {RUN}` draws them into reports/results/{RUN}/, then `nox -s note -- {RUN}` adds them here as a revision.

## Conclusions

<!-- conclusions: open --> _Open: write what this run shows and what to try next, then delete this line._

## Links

No earlier note on this question.

All notes, by question: [index](index.md).
"""
    assert (project / "notes" / "index.md").read_text(encoding="utf-8") == f"""\
# Notes

<!-- written by `nox -s note` (stage D7) from the notes' front matter, and rewritten on every call: write in the notes, not here. -->

This project's experiment notes by question, newest first; `open`: the conclusions are not written yet.

## {QUESTION}

- [[20261126-small-cnn|small_cnn on mini, 1 epoch, lr 0.001]] ([20261126-small-cnn]): 2026-11-26, `runs/{RUN}`, open

[20261126-small-cnn]: 20261126-small-cnn.md "small_cnn on mini, 1 epoch, lr 0.001"
"""
    assert list(check(Project(project), NOW)) == []


@pytest.mark.parametrize("target", ["4242", "slurm-4242", RUN, f"runs/{RUN}"])
def test_a_note_of_a_job_with_its_results(project: Path, target: str) -> None:
    """By job id or run: the job ledger's job, commit and hash, the sync ledger's W&B page, D6's metrics, SLA and curves."""
    add_run(project, latest=False)
    add_job(project)
    add_synced(project)
    add_results(project)
    write(Project(project), target, now=NOW)
    text, meta, body = note_of(project)
    assert {k: meta[k] for k in ("id", "job_id", "backend", "job_url", "run_url", "commit", "config_hash", "config", "metrics",
                                 "figures", "tags", "links")} == {
        "id": "20261126-small-cnn", "job_id": "4242", "backend": "slurm", "job_url": "https://slurm.example/jobs/4242",
        "run_url": WANDB_URL, "commit": COMMIT, "config_hash": JOB_HASH, "config": KEY_CONFIG,
        "metrics": {"test/acc": 0.111111, "test/loss": 2.299357, "train/loss": 2.35978, "val/acc": 0.122222, "val/loss": 2.298018},
        "figures": [f"../reports/results/{RUN}/loss.png", f"../reports/results/{RUN}/val_acc.png"],
        "tags": ["image_classification", "small_cnn", "mini", "slurm"], "links": []}
    assert f"- run: `runs/{RUN}`: 1 epoch(s), 4 step(s), 1 process(es)\n{JOB_FACTS}\n" in body
    assert (f"{CONFIG_ROWS}\nDifference from the defaults (reports/results/{RUN}/results.json):\n\n"
            '- `trainer.max_epochs`: {"default": 10, "value": 1}\n\n## Results\n\n' + RESULTS_SECTION + "\n## Conclusions\n") in body
    assert "No curves yet" not in text
    for figure in meta["figures"]:  # the links resolve from the note's folder
        assert (project / "notes" / figure).resolve().is_file()
    assert list(check(Project(project), NOW)) == []


def test_a_second_call_appends_a_revision_and_keeps_the_researchers_text_byte_for_byte(project: Path) -> None:
    add_run(project)
    add_job(project)
    path, _ = write(Project(project), None, now=NOW)
    first = path.read_bytes()
    edited = (first.decode()
              .replace("<!-- conclusions: open --> _Open: write what this run shows and what to try next, then delete this line._",
                       "Accuracy 11 % after one epoch on 600 samples: chance level.  \nNext: 20 epochs.\t(see Q1)")
              .replace("## Setup\n", "## Setup\n\nMy aside: the mini data is *tiny*.\n")
              .replace("- mini\n", "- mini\n- baseline\n")          # a tag of their own, in the front matter
              + "\n## Scratch\n\nno trailing newline here").encode()
    path.write_bytes(edited)
    add_synced(project)
    add_results(project)
    again, created = write(Project(project), RUN, now=NOW + timedelta(days=1))
    assert (again, created) == (path, False)
    grown = path.read_bytes()
    assert grown[:len(edited)] == edited
    assert grown[len(edited):].decode() == f"""\n
## Revision 2026-11-27T09:30:00Z

What `nox -s note` finds now; the sections above are kept as they are.

- changed since the note was written: run_url, metrics, figures
{JOB_FACTS}
{RESULTS_SECTION}"""
    third = write(Project(project), RUN, now=NOW + timedelta(days=2))[0].read_bytes()
    assert third.startswith(grown)
    assert third[len(grown):].decode().startswith("\n## Revision 2026-11-28T09:30:00Z\n")  # the note ended with "\n" now
    assert len(list((project / "notes").glob("*.md"))) == 2  # the note and the index: no second note of the run
    index = (project / "notes" / "index.md").read_text(encoding="utf-8")
    assert f"- [[20261126-small-cnn|small_cnn on mini, 1 epoch, lr 0.001]] ([20261126-small-cnn]): 2026-11-26, `runs/{RUN}`\n" in index
    assert list(check(Project(project), NOW + timedelta(days=OPEN_DAYS + 5))) == []  # conclusions written: no warning


def test_earlier_notes_on_the_same_question_are_linked_and_the_index_maps_them(project: Path) -> None:
    add_run(project, "20261120T101010Z-small_cnn")
    write(Project(project), None, now=NOW - timedelta(days=6))
    add_run(project, "20261126T111111Z-small_cnn", acc=0.5)
    write(Project(project), None, now=NOW - timedelta(hours=1))
    add_run(project, RUN, acc=0.7)  # same day and slug as the one before: the id takes -2
    path, _ = write(Project(project), None, now=NOW)
    meta, body = split(path.read_text(encoding="utf-8"))
    assert (meta["id"], meta["links"]) == ("20261126-small-cnn-2", ["20261120-small-cnn", "20261126-small-cnn"])
    assert body.endswith("""\
## Links

Earlier notes on the same question:

- [[20261120-small-cnn|small_cnn on mini, 1 epoch, lr 0.001]] ([20261120-small-cnn])
- [[20261126-small-cnn|small_cnn on mini, 1 epoch, lr 0.001]] ([20261126-small-cnn])

All notes, by question: [index](index.md).

[20261120-small-cnn]: 20261120-small-cnn.md "small_cnn on mini, 1 epoch, lr 0.001"
[20261126-small-cnn]: 20261126-small-cnn.md "small_cnn on mini, 1 epoch, lr 0.001"
""")
    # A new question (the requirement rewritten): its note links none of the earlier ones and gets its own group.
    requirements = project / "docs" / "plan" / "requirements.md"
    front, rest = split(requirements.read_text(encoding="utf-8"))
    front["requirement"] = "Detect defects on  PCB images."
    requirements.write_text("---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n" + rest, encoding="utf-8")
    add_run(project, "20261126T121212Z-resnet")
    path, _ = write(Project(project), None, now=NOW + timedelta(hours=1))
    assert split(path.read_text(encoding="utf-8"))[0]["links"] == []
    assert (project / "notes" / "index.md").read_text(encoding="utf-8").split("newest first; `open`: the conclusions are not "
                                                                              "written yet.\n\n")[1] == f"""\
## {QUESTION}

- [[20261126-small-cnn-2|small_cnn on mini, 1 epoch, lr 0.001]] ([20261126-small-cnn-2]): 2026-11-26, `runs/{RUN}`, open
- [[20261126-small-cnn|small_cnn on mini, 1 epoch, lr 0.001]] ([20261126-small-cnn]): 2026-11-26, `runs/20261126T111111Z-small_cnn`, open
- [[20261120-small-cnn|small_cnn on mini, 1 epoch, lr 0.001]] ([20261120-small-cnn]): 2026-11-20, `runs/20261120T101010Z-small_cnn`, open

## Detect defects on PCB images.

- [[20261126-resnet|small_cnn on mini, 1 epoch, lr 0.001]] ([20261126-resnet]): 2026-11-26, `runs/20261126T121212Z-resnet`, open

[20261120-small-cnn]: 20261120-small-cnn.md "small_cnn on mini, 1 epoch, lr 0.001"
[20261126-resnet]: 20261126-resnet.md "small_cnn on mini, 1 epoch, lr 0.001"
[20261126-small-cnn]: 20261126-small-cnn.md "small_cnn on mini, 1 epoch, lr 0.001"
[20261126-small-cnn-2]: 20261126-small-cnn-2.md "small_cnn on mini, 1 epoch, lr 0.001"
"""
    assert list(check(Project(project), NOW + timedelta(hours=2))) == []


def test_a_run_that_did_not_finish_gets_a_note_that_says_so(project: Path) -> None:
    (project / "runs" / RUN).mkdir(parents=True)  # no config.yaml, no summary.json: the job died before its first epoch
    path, _ = write(Project(project), RUN, now=NOW)
    meta, body = split(path.read_text(encoding="utf-8"))
    assert (meta["id"], meta["title"], meta["config"], meta["metrics"], meta["config_hash"]) == (
        "20261126-small-cnn", RUN, {}, {}, None)
    assert f"- run: `runs/{RUN}`: no run summary (the run did not finish)\n" in body
    assert f"\n`runs/{RUN}/config.yaml` is missing: the run's configuration is not recorded.\n\n## Results\n\n" \
           "No metrics recorded: the run has none yet.\n\nNo curves yet:" in body
    assert "Hypothesis: the model, set up as below" in body
    assert list(check(Project(project), NOW)) == []


def faults(project: Path) -> list[str]:
    return [str(e) for e in check(Project(project), NOW + timedelta(hours=1))]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def two_notes(project: Path) -> tuple[Path, Path]:
    add_run(project, "20261120T101010Z-small_cnn")
    first, _ = write(Project(project), None, now=NOW - timedelta(days=6))
    add_run(project)
    second, _ = write(Project(project), None, now=NOW)
    return first, second


def test_gate_d7_reports_front_matter_against_the_schema(project: Path) -> None:
    first, second = two_notes(project)
    edit(second, "  test/acc: 0.111111\n", "  test/acc: high\n")
    edit(second, "figures: []\n", "figures: []\nowner: me\n")
    edit(second, "created: '2026-11-26T09:30:00Z'", "created: 26 Nov 2026")
    edit(first, "id: 20261120-small-cnn", "id: 20261120-renamed")
    assert faults(project) == [
        "notes/20261120-small-cnn.md: id: '20261120-renamed' is invalid: expected the file's name without .md: "
        "'20261120-small-cnn' (hint: the id is the note's permanent address: restore the one it was written with)",
        "notes/20261126-small-cnn.md: owner: 'me' is invalid: expected no key 'owner' here (allowed: schema_version, id, "
        "title, created, run, question, job_id, backend, job_url, run_url, commit, config_hash, config, metrics, figures, tags, "
        "links) (hint: remove the key or fix its spelling: the schema is closed)",
        "notes/20261126-small-cnn.md: created: '26 Nov 2026' is invalid: expected text matching "
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ (hint: UTC, ISO 8601, when `nox -s note` first wrote the note)",
        "notes/20261126-small-cnn.md: metrics.test/acc: 'high' is invalid: expected a value of type number "
        "(hint: use the documented type)",
    ]


def test_gate_d7_reports_a_front_matter_that_does_not_parse_and_the_writer_stops_on_it(project: Path) -> None:
    first, _ = two_notes(project)
    edit(first, "links: []\n---\n", "links: []\n")
    assert faults(project) == [
        "notes/20261120-small-cnn.md: <root>: missing: expected a closing '---' line after the front matter "
        "(hint: restore the document)"]
    with pytest.raises(NoteError) as caught:
        write(Project(project), None, now=NOW)
    assert str(caught.value) == (
        "cannot read notes/20261120-small-cnn.md: <root>: missing: expected a closing '---' line after the front matter "
        "(hint: restore the document) (hint: fix the front matter first: `python -m validators check --stages D7` lists "
        "every problem of the notes)")


def test_gate_d7_reports_dangling_links(project: Path) -> None:
    first, second = two_notes(project)
    edit(second, "## Conclusions\n", "## Conclusions\n\nAs in [[20261101-lost|an old idea]] and [[20261120-small-cnn]]; "
         "see [20261101-gone] and [the plan][plan]; `[[20261101-in-code]]` is code.\n")
    edit(second, "\n[20261120-small-cnn]: 20261120-small-cnn.md", "\n[20261120-small-cnn]: 20261120-small.md")
    edit(second, "links:\n- 20261120-small-cnn\n", "links:\n- 20261120-small-cnn\n- 20261101-lost\n")
    (project / "notes" / "index.md").write_text(
        (project / "notes" / "index.md").read_text(encoding="utf-8").replace("- [[20261120-small-cnn|", "- [20261120-small-cnn|"))
    line = second.read_text(encoding="utf-8").splitlines().index("## Conclusions") + 3
    last = len(second.read_text(encoding="utf-8").splitlines())
    assert faults(project) == [
        "notes/20261126-small-cnn.md: links[1]: '20261101-lost' is invalid: expected the id of a note in notes/ "
        "(hint: the notes: 20261120-small-cnn, 20261126-small-cnn)",
        f"notes/20261126-small-cnn.md: line {last}: '[20261120-small-cnn]: 20261120-small.md' is invalid: expected a "
        "definition whose target exists (notes/20261120-small.md does not) "
        "(hint: fix the file name or restore the note)",
        f"notes/20261126-small-cnn.md: line {line}: '[[20261101-lost|an old idea]]' is invalid: expected a link to a note of "
        "notes/ (its id) (hint: the notes: 20261120-small-cnn, 20261126-small-cnn)",
        f"notes/20261126-small-cnn.md: line {line}: '[plan]' is invalid: expected a link reference definition "
        "'[plan]: <file> \"title\"' in the same file (hint: add the definition or fix the label)",
        f"notes/20261126-small-cnn.md: line {line}: '[20261101-gone]' is invalid: expected a link reference definition "
        "'[20261101-gone]: <file> \"title\"' in the same file (hint: add the definition or fix the label)",
        "notes/index.md: 20261120-small-cnn: missing: expected a [[20261120-small-cnn|...]] link to "
        "notes/20261120-small-cnn.md (hint: every `nox -s note` call rewrites the index from the notes)",
    ]
    (project / "notes" / "index.md").unlink()
    assert faults(project)[-1] == ("notes/index.md: <root>: missing: expected the notes' map of contents "
                                   "(hint: every `nox -s note` call rewrites the index from the notes)")


def test_an_old_note_with_open_conclusions_is_a_warning_not_an_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_run(project)
    written = datetime.now(UTC).replace(microsecond=0) - timedelta(days=OPEN_DAYS + 6)
    write(Project(project), None, now=written)
    day = f"{written:%Y-%m-%d}"
    warning = (f"warning: notes/{written:%Y%m%d}-small-cnn.md: ## Conclusions: missing: expected the researcher's conclusions "
               f"within {OPEN_DAYS} days (written {day}, {OPEN_DAYS + 6} days ago) (hint: write them under ## Conclusions and "
               "delete the line with the open marker)")
    found: list[GateWarning] = []
    assert gates.run(Project(project), ["D7"], GATES, warn=found.append) == []
    assert [str(w) for w in found] == [warning]
    assert gates.run(Project(project), ["D"], GATES) == []  # the default channel prints it
    assert capsys.readouterr().out == warning + "\n"
    assert [str(w) for w in check(Project(project), written + timedelta(days=OPEN_DAYS))] == []  # not yet old on day 14
    done = subprocess.run([sys.executable, "-m", "validators", "--project", str(project), "check", "--stages", "D7"],
                          cwd=TEMPLATE, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{warning}\nstages D7: all gates pass\n", "")


def test_the_cli_writes_the_note_then_a_revision_and_names_bad_targets(project: Path) -> None:
    def note(*args: str) -> tuple[int, str, str]:
        done = subprocess.run([sys.executable, "-m", "validators", "--project", str(project), "note", *args], cwd=TEMPLATE,
                              capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr

    assert note() == (1, "", "error: no run yet: runs/latest does not exist (hint: train one (nox -s train_smoke or nox -s "
                              "submit), or name a run folder or a job id: nox -s note -- RUN|JOB)\n")
    add_run(project)
    add_job(project, "20261126T090000Z-slurm")
    assert note("nope") == (1, "", "error: 'nope' is neither a run folder (runs/<name>) nor a job: no job 'nope' in jobs/ "
                                   "(hint: the known jobs: slurm-4242)\n")
    assert note("docs") == (1, "", "error: docs: not a run folder: a note is written for a folder runs/<name>/ "
                                   "(hint: name a run under runs/, or a job id)\n")
    assert note("4242") == (1, "", "error: job slurm-4242 has no run folder yet: runs/20261126T090000Z-slurm does not exist "
                                   "(state COMPLETED) (hint: wait for it: nox -s job -- wait slurm-4242)\n")
    day = datetime.now(UTC).strftime("%Y%m%d")
    assert note() == (0, f"notes/{day}-small-cnn.md: written; its conclusions are open until you write them (## Conclusions)\n"
                         "notes/index.md: updated\n", "")
    assert note(RUN) == (0, f"notes/{day}-small-cnn.md: a revision appended; the text above it is kept as it was\n"
                            "notes/index.md: updated\n", "")
    assert note("--help")[1].startswith("usage: python -m validators note [-h] [RUN | JOB]")


def test_the_note_session_is_in_the_template_noxfile() -> None:
    noxfile = (TEMPLATE / "template" / "noxfile.py.jinja").read_text(encoding="utf-8")
    assert '@nox.session(tags=["tracking"])\ndef note(session: nox.Session) -> None:\n' in noxfile
    assert 'validators_session(session, "note")' in noxfile
    assert "    nox -s note                   # D7: " in noxfile
