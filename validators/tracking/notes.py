"""Stage D7: one permanent note per experiment, `notes/<YYYYMMDD>-<slug>.md`, and their map of contents.

    path, new = write(project, None)        # runs/latest: a new note, or a dated revision appended to its note
    path, new = write(project, "slurm-42")  # a job (jobs/slurm-42.yaml): the note of the run folder it wrote

A note is written from what the run left behind: its folder (config.yaml, summary.json), the job
ledger that names the folder, the sync agent's ledger (the W&B run URL) and, once `nox -s results`
ran, reports/results/<run>/results.json with the curves. Its YAML front matter (schema `note`) holds
the machine-readable record; the body has the question (docs/plan/requirements.md and task.md), the
setup, the results and the conclusions, which stay marked open (`OPEN_MARKER`) until the researcher
writes them and deletes that line.

Never overwritten: a note's file only grows. A later call for the same run appends a dated revision
section with what is known then, so everything the researcher wrote, anywhere in the file, stays
byte for byte. Earlier notes on the same question are linked as `[[id|title]]`, with Markdown link
reference definitions (`[id]: id.md "title"`) so the links work in plain viewers too; notes/index.md
is rewritten from the notes' front matter on every call.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ..artifacts import LATEST, NOTES, NOTES_INDEX, REQUIREMENTS, RESULTS, RUN_SUMMARY, RUNS, TASK
from ..errors import ClusterError, GateError, HephaestusError
from ..frontmatter import join, split
from ..job_ledger import JobRecord, find, load_all
from ..project import Project
from . import note_text
from .note_text import Note, Run, tidy
from .sync_ledger import SyncLedger, default_path

TIMESTAMP = re.compile(r"^[0-9]{8}T[0-9]{4,6}Z-")  # the run folder's prefix (runs.py): dropped from the slug
KEY_CONFIG = {"model": None, "data": ("root", "batch_size"), "optim": None,
              "trainer": ("accelerator", "devices", "num_nodes", "strategy", "precision", "max_epochs")}  # None: every key


class NoteError(HephaestusError):
    """A note cannot be written: which run or note, and what to do."""

    def __init__(self, problem: str, hint: str):
        super().__init__(f"{problem} (hint: {hint})")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def locate(project: Project, target: str | None) -> tuple[str, JobRecord | None]:
    """(runs/<name>, its job) for a run folder (a path, or a name under runs/; default runs/latest) or a job id."""
    root = project.root.resolve()
    text = target or LATEST.path
    folder = next((p for p in (root / text, root / RUNS.path / text) if p.is_dir()), None)
    job = None
    if folder is None:
        if target is None:
            raise NoteError(f"no run yet: {LATEST.path} does not exist", "train one (nox -s train_smoke or nox -s submit), "
                            "or name a run folder or a job id: nox -s note -- RUN|JOB")
        try:
            job = find(root, text)
        except ClusterError as err:
            raise NoteError(f"{text!r} is neither a run folder ({RUNS.path}/<name>) nor a job: {err.problem}",
                            err.hint or "name a run folder or a job id") from None
        folder = root / job.run_dir
        if not folder.is_dir():
            raise NoteError(f"job {job.key} has no run folder yet: {job.run_dir} does not exist (state {job.state})",
                            f"wait for it: nox -s job -- wait {job.key}")
    folder = folder.resolve()
    if folder.parent != root / RUNS.path:
        raise NoteError(f"{text}: not a run folder: a note is written for a folder {RUNS.path}/<name>/",
                        f"name a run under {RUNS.path}/, or a job id")
    rel = folder.relative_to(root).as_posix()
    if job is None:
        job = next((r for r in reversed(load_all(root)) if r.run_dir.rstrip("/") == rel), None)
    return rel, job


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise NoteError(f"{path.name} of {path.parent.name} does not read: {err}",
                        "restore it, or re-run what writes it") from err
    return data if isinstance(data, dict) else None


def synced_url(root: Path, name: str) -> str | None:
    """The W&B run page of the run's newest synced content, from the sync agent's ledger of runs/."""
    ledger = default_path(root / RUNS.path)
    if not ledger.is_file():
        return None
    with SyncLedger.open(ledger) as opened:
        urls = [row.url for row in opened.rows() if row.run_path.startswith(f"{name}/") and row.url]
    return urls[-1] if urls else None


def gather(project: Project, target: str | None) -> Run:
    rel, job = locate(project, target)
    root = project.root
    name = posixpath.basename(rel)
    config_path = root / rel / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    results = read_json(root / RESULTS.path / name / "results.json")
    url = (results or {}).get("run_url") or synced_url(root, name)
    run_summary = read_json(root / rel / Path(RUN_SUMMARY.path).name) or {}
    return Run(rel, config if isinstance(config, dict) else {}, run_summary, job, results, url)


def planned(project: Project) -> tuple[dict[str, Any], dict[str, Any]]:
    """The front matter of requirements.md and task.md ({} for one that is missing or does not parse)."""
    out = []
    for artifact in (REQUIREMENTS, TASK):
        text = project.read(artifact.path)
        try:
            out.append(split(text, file=artifact.path)[0] if text else {})
        except GateError:
            out.append({})
    return out[0], out[1]


def key_config(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, keys in KEY_CONFIG.items():
        values = config.get(group)
        if isinstance(values, dict):
            out[group] = {k: v for k, v in values.items() if keys is None or k in keys}
    if isinstance(config.get("seed"), int):
        out["seed"] = config["seed"]
    return out


def metrics_of(run: Run) -> dict[str, float]:
    """name -> final value: the run's summary.json (test metrics), then results.json's finals for the others."""
    out = {k: round(float(v), 6) for k, v in (run.summary.get("metrics") or {}).items() if isinstance(v, (int, float))}
    for name, entry in ((run.results or {}).get("metrics") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("final"), (int, float)) and name not in out:
            out[name] = round(float(entry["final"]), 6)
    return out


def figures_of(run: Run) -> list[str]:
    """The D6 figures, relative to the notes folder."""
    folder = posixpath.relpath(f"{RESULTS.path}/{run.name}", NOTES.path)
    return [f"{folder}/{f}" for f in (run.results or {}).get("figures") or [] if isinstance(f, str)]


def slug_of(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", TIMESTAMP.sub("", name).lower()).strip("-") or "run"


def title_of(run: Run) -> str:
    model = (run.config.get("model") or {}).get("name") or run.summary.get("model")
    if not model:
        return run.name
    data = posixpath.basename(str((run.config.get("data") or {}).get("root") or "")) or "its data"
    epochs = run.summary.get("epochs", (run.config.get("trainer") or {}).get("max_epochs"))
    parts = [f"{model} on {data}"]
    if isinstance(epochs, int):
        parts.append(f"{epochs} epoch" + ("" if epochs == 1 else "s"))
    if (run.config.get("optim") or {}).get("lr") is not None:
        parts.append(f"lr {run.config['optim']['lr']}")
    return tidy(", ".join(parts))


def record(project: Project, run: Run) -> dict[str, Any]:
    """The front matter's values that a revision compares: what the run, its job and its results say now."""
    job = run.job
    config_text = project.root / run.path / "config.yaml"
    config_hash = job.config_hash if job and job.config_hash else (run.results or {}).get("config_hash") or (
        hashlib.sha256(config_text.read_bytes()).hexdigest() if config_text.is_file() else None)
    commit = (job.commit if job and job.commit else None) or (run.results or {}).get("commit") or None
    return {"job_id": job.job_id if job else None, "backend": job.backend if job else None,
            "job_url": (job.url or None) if job else None, "run_url": run.run_url or None, "commit": commit,
            "config_hash": config_hash, "config": key_config(run.config), "metrics": metrics_of(run),
            "figures": figures_of(run)}


def tags_of(run: Run, task: dict[str, Any]) -> list[str]:
    data = posixpath.basename(str((run.config.get("data") or {}).get("root") or ""))
    raw = [task.get("family"), (run.config.get("model") or {}).get("name"), data, run.job.backend if run.job else None]
    tags = [re.sub(r"[^a-z0-9_.-]+", "-", str(t).lower()).strip("-") for t in raw if t]
    return list(dict.fromkeys(t for t in tags if t))


def read_notes(project: Project) -> list[Note]:
    """Every note in notes/ (index.md aside), oldest first; one whose front matter does not parse stops the writer,
    which could not tell whether it is the run's note (a note is never rewritten, so a duplicate would stay)."""
    folder = project.path(NOTES)
    notes = []
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        if path.name == posixpath.basename(NOTES_INDEX.path):
            continue
        try:
            meta, body = split(path.read_text(encoding="utf-8"), file=f"{NOTES.path}/{path.name}")
        except GateError as err:
            raise NoteError(f"cannot read {err}", "fix the front matter first: `python -m validators check --stages D7` "
                            "lists every problem of the notes") from None
        notes.append(Note(path, meta, body))
    return sorted(notes, key=lambda n: (str(n.meta.get("created")), n.id))


def new_id(project: Project, day: str, name: str) -> str:
    """<YYYYMMDD>-<slug>, with -2, -3... when another run's note of the same day took it."""
    base = f"{day}-{slug_of(name)}"
    n = 1
    while (project.path(NOTES) / f"{base if n == 1 else f'{base}-{n}'}.md").exists():
        n += 1
    return base if n == 1 else f"{base}-{n}"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write(project: Project, target: str | None, now: datetime | None = None) -> tuple[Path, bool]:
    """Write the run's note, or append a revision to it; then rewrite notes/index.md. (path, True when new)."""
    moment = now or datetime.now(UTC)
    run = gather(project, target)
    requirements, task = planned(project)
    notes = read_notes(project)
    current = record(project, run)
    mine = next((n for n in notes if n.meta.get("run") == run.path), None)
    if mine is not None:
        changed = [k for k, v in current.items() if mine.meta.get(k) != v]
        old = mine.path.read_bytes()
        text = ("" if old.endswith(b"\n") or not old else "\n") + note_text.revision(run, current, changed, utc(moment))
        write_atomic(mine.path, old + text.encode("utf-8"))
        mine.body += text
        path, created = mine.path, False
    else:
        question = " ".join(str(requirements.get("requirement") or "").split()) or None
        note_id = new_id(project, moment.astimezone(UTC).strftime("%Y%m%d"), run.name)
        earlier = [n for n in notes if question and n.meta.get("question") == question]
        meta = {"schema_version": 1, "id": note_id, "title": title_of(run), "created": utc(moment), "run": run.path,
                "question": question, **current, "tags": tags_of(run, task), "links": [n.id for n in earlier]}
        body = note_text.body(run, meta, requirements, task, earlier)
        path = project.path(NOTES) / f"{note_id}.md"
        write_atomic(path, join(meta, body).encode("utf-8"))
        notes.append(Note(path, meta, body))
        created = True
    write_atomic(project.path(NOTES_INDEX), note_text.index(notes).encode("utf-8"))
    return path, created
