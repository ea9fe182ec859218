"""Render the plan to requirements.md, tech.md and task.md: YAML front matter plus readable Markdown.

The planner (the template's hooks/plan_docs.py) writes all three at copy time; `nox -s setup`
re-renders tech.md once it has measured the models in the project venv (generation/measured.py).
Everything is written by Python string formatting, never by a template engine, so text from the
requirement or an LLM reply stays text. Table cells are escaped (`|`, newlines).
"""

from __future__ import annotations

from typing import Any

from ..artifacts import BUILD_LOG
from ..frontmatter import join
from ..resources import BYTES_PER_PARAM, CONTEXT_GB, PENDING, TRAIN_FLOPS_FACTOR, pending


def cell(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() if value is not None else "—"


def fence(text: str) -> str:
    """A code fence longer than any backtick run inside `text`, so the text cannot close it."""
    longest = max((len(run) for run in text.split("\n") for run in _runs(run)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def _runs(line: str) -> list[str]:
    out, current = [], ""
    for ch in line:
        current = current + ch if ch == "`" else ""
        if current:
            out.append(current)
    return out


def human(n: float | None, unit: str = "") -> str:
    if n is None:
        return PENDING
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.2f} {suffix}{unit}".rstrip()
    return f"{n:g} {unit}".rstrip()


def planner_line(planner: dict[str, Any]) -> str:
    if planner["name"] == "litellm":
        return f"Written by the LLM planner (litellm model `{planner['model']}`), validated against the JSON Schemas."
    line = "Written by the offline planner (deterministic rules, no network)."
    if planner.get("fallback"):
        fb = planner["fallback"]
        line += (f" **Fallback:** the LLM planner (`{planner['model']}`) failed after {fb['attempts']} attempt(s): "
                 f"{cell(fb['reason'])}.")
    return line


def requirements_md(doc: dict[str, Any]) -> str:
    items = doc["items"]
    lines = [
        f"# Requirements: {doc['project']}", "", f"> {planner_line(doc['planner'])}",
        "> The front matter above is the machine-readable record; stage gates read it, not this prose.", "",
        "## The requirement, as given", "", fence(doc["requirement"]), "",
        "## Problem statements", "", *[f"- {cell(s)}" for s in doc["problem_statements"]], "",
        "## Goals", "", *[f"- {cell(g)}" for g in doc["goals"]], "",
        "## Items and scores", "",
        "A score is how confidently a later stage can act on the item without asking (0..1); at or "
        "below 0.6 the item carries a clarification. Rules: docs/planning.md of the template.", "",
        "| id | kind | item | statement | score | rule |", "|---|---|---|---|---:|---|",
        *[f"| {i['id']} | {i['kind']} | {cell(i['name'])} | {cell(i['statement'])} | {i['score']:.2f} | {cell(i['rule'])} |"
          for i in items], "",
        "## Clarifications", "",
    ]
    open_items = [i for i in items if i["clarification"]]
    if open_items:
        lines += ["| id | item | question | follow-up strategy | answer |", "|---|---|---|---|---|"]
        lines += [f"| {i['clarification']['id']} | {i['id']} {cell(i['name'])} | {cell(i['clarification']['question'])} | "
                  f"{cell(i['clarification']['strategy'])} | {cell(i['clarification']['answer'] or 'unanswered')} |"
                  for i in open_items]
    else:
        lines.append("None: every item scored above 0.6.")
    return join(doc, "\n".join(lines) + "\n")


def tech_md(doc: dict[str, Any], sla: dict[str, Any]) -> str:
    cands = doc["candidates"]
    hw, a = doc["hardware"], doc["assumptions"]
    chosen = next(c for c in cands if c["key"] == doc["chosen"])

    def row(label: str, fn: Any) -> str:
        return f"| {label} | " + " | ".join(cell(fn(c)) for c in cands) + " |"

    lines = [
        f"# Technology selection: {doc['family'].replace('_', ' ')}", "", f"> {planner_line(doc['planner'])}", "",
        f"**Chosen: {chosen['label']} (`{chosen['key']}`).** {cell(doc['choice_rationale'])}", "",
        "Every candidate below is generated in `src/*/models/components/`; switch with `model=<key>`.", "",
        "## Comparison", "",
        "| | " + " | ".join(f"`{c['key']}`" + (" (chosen)" if c["key"] == doc["chosen"] else "") for c in cands) + " |",
        "|---|" + "---|" * len(cands),
        row("model", lambda c: c["label"]),
        row("parameters (measured)", lambda c: f"{c['params']:,}" if c["params"] else PENDING),
        row("forward FLOPs / sample (measured)", lambda c: human(c["flops_per_sample"], "FLOP")),
        row("activations / sample (measured)", lambda c: human(c["activations_per_sample"])),
        row("CPU latency, batch 1 (measured)", lambda c: f"{c['cpu_latency_ms']:.3f} ms" if c["cpu_latency_ms"] else PENDING),
        row(f"training memory on {hw['name']} (estimate)", lambda c: f"{c['train_memory_gb']:.3f} GB" if c["train_memory_gb"] is not None else PENDING),
        row(f"training time, {a['epochs'] or 'the configured'} epochs x {a['full_samples']:,} samples (estimate)",
            lambda c: _duration(c["train_hours"])),
        row("expected performance", lambda c: c["expected_performance"]),
        row("strengths", lambda c: "; ".join(c["strengths"])),
        row("weaknesses", lambda c: "; ".join(c["weaknesses"])),
        row("constraints", lambda c: "; ".join(c["constraints"])), "",
        "## Datasets", "",
        "| | mini (written to `data/mini/` at generation) | full (you provide it) |", "|---|---|---|",
        f"| name | {cell(chosen['datasets']['mini']['name'])} | {cell(chosen['datasets']['full']['name'])} |",
        f"| origin / size | {cell(chosen['datasets']['mini']['origin'])} | {cell(chosen['datasets']['full']['size'])} |",
        f"| licence | {cell(chosen['datasets']['mini']['licence'])} | {cell(chosen['datasets']['full']['licence'])} |",
        f"| where the loader expects it | `data/mini/` | {cell(chosen['datasets']['full']['layout'])} |", "",
        "## Against the requirement", "", *_against(chosen, hw, sla), "",
        "## How the figures were obtained", "",
        f"- **Measured** by `nox -s setup` in the project venv ({_status(doc)}), by instantiating each model from "
        "its config at the mini data's sizes (classes, features, vocabulary): parameters, forward FLOPs (`torch.utils.flop_counter`; "
        "matmuls and convolutions), leaf-module output elements per sample, median CPU latency of 30 batch-1 "
        "forward passes. Vocabulary-sized layers grow with the full data's vocabulary.",
        f"- **Training memory** = {BYTES_PER_PARAM} B x parameters (fp32 weights, gradients, Adam moments) + "
        f"activation bytes x activations x batch {a['batch_size'] or PENDING} ({a['precision'] or PENDING}) + {CONTEXT_GB} GB CUDA context.",
        f"- **Training time** = {TRAIN_FLOPS_FACTOR} x forward FLOPs x {a['full_samples']:,} samples "
        f"({a['samples_source']}) x {a['epochs'] or PENDING} epochs / ({hw['name']} peak "
        f"{hw['fp32_tflops']} TFLOP/s fp32, {hw['tensor_tflops']} TFLOP/s tensor x utilisation {a['utilisation']}). "
        "Data loading is not modelled: read it as a lower bound.",
        f"- Hardware: **{hw['name']}** ({hw['source']}), {hw['memory_gb']} GB.",
    ]
    return join(doc, "\n".join(lines) + "\n")


def _status(doc: dict[str, Any]) -> str:
    waiting = pending(doc)
    return f"pending for {', '.join(waiting)}" if waiting else "measured"


def _duration(hours: float | None) -> str:
    if hours is None:
        return PENDING
    seconds = hours * 3600
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{hours:.1f} h"


def _against(c: dict[str, Any], hw: dict[str, Any], sla: dict[str, Any]) -> list[str]:
    out = []
    if sla.get("latency_ms") is not None and c["cpu_latency_ms"] is not None:
        ok = c["cpu_latency_ms"] <= sla["latency_ms"]
        out.append(f"- Latency: the requirement asks <= {sla['latency_ms']:g} ms; `{c['key']}` measured "
                   f"{c['cpu_latency_ms']:.3f} ms per sample on this CPU: {'fits' if ok else 'does NOT fit'} "
                   "before serving overhead (stage C measures the served p95).")
    if c["train_memory_gb"] is not None:
        ok = c["train_memory_gb"] <= hw["memory_gb"]
        out.append(f"- Memory: {c['train_memory_gb']:.3f} GB estimated against {hw['memory_gb']} GB on {hw['name']}: "
                   f"{'fits' if ok else 'does NOT fit: lower the batch size or use bf16-mixed'}.")
    budget = sla.get("budget")
    if budget and budget.get("unit") == "GPU-hours" and c["train_hours"] is not None:
        ok = c["train_hours"] <= budget["amount"]
        out.append(f"- Budget: {_duration(c['train_hours'])} estimated against {budget['amount']:g} GPU-hours: "
                   f"{'fits' if ok else 'does NOT fit'}.")
    return out or ["- The requirement states no latency, memory or compute budget to compare against."]


def task_md(doc: dict[str, Any]) -> str:
    lines = [f"# Tasks: {doc['family'].replace('_', ' ')} with `{doc['model']}`", "",
             f"Each task's checks are re-run by code against {BUILD_LOG} (stage A3).", "",
             "| id | task | outputs | done when |", "|---|---|---|---|"]
    lines += [f"| {t['id']} | {cell(t['title'])} | {cell(', '.join(t['outputs']))} | {cell('; '.join(t['done_criteria']))} |"
              for t in doc["tasks"]]
    for t in doc["tasks"]:
        lines += ["", f"## {t['id']}: {t['title']}", "", f"- inputs: {', '.join(t['inputs']) or '—'}",
                  f"- outputs: {', '.join(f'`{o}`' for o in t['outputs'])}",
                  *[f"- check: {c['kind']} `{c['target']}`" for c in t["checks"]]]
    return join(doc, "\n".join(lines) + "\n")
