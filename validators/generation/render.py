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
from ..resources import (
    BACKWARD_FACTOR,
    BYTES_PER_PARAM,
    CONTEXT_GB,
    HEAD_FLOPS_PER_PARAM,
    OPTIMISER_BYTES,
    PENDING,
    TRAIN_FLOPS_FACTOR,
    WEIGHT_BYTES,
    WORKING_SET,
    pending,
)


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


KIND = {"baseline": "hand-written baseline", "published": "published architecture, trained from scratch",
        "pretrained": "pretrained weights, fine-tuned"}
LANGUAGE = {"en": "English", "zh": "Chinese", "multi": "mixed Chinese and English"}


def _gb(value: float | None) -> str:
    return f"{value:.3f} GB" if value is not None else PENDING


def _kind(c: dict[str, Any]) -> str:
    kind = KIND.get(c.get("kind", ""), "")
    hub = c.get("hub")
    return f"{kind}: `{hub['repo']}@{hub['revision']}`" if hub else kind or "—"


def _frozen(c: dict[str, Any], field: str, fmt: Any) -> str:
    if c.get("kind") != "pretrained" and c.get(field) is None:
        return "no backbone to freeze"
    return fmt(c.get(field)) if c.get(field) is not None else PENDING


def _verdict(c: dict[str, Any]) -> str:
    status = c.get("verdict")
    if status is None:
        return "—"
    return status + (": " + "; ".join(c["issues"]) if c.get("issues") else "")


def tech_md(doc: dict[str, Any], sla: dict[str, Any]) -> str:
    cands = doc["candidates"]
    hw, a = doc["hardware"], doc["assumptions"]
    chosen = next(c for c in cands if c["key"] == doc["chosen"])
    pretrained = any(c.get("kind") == "pretrained" for c in cands)

    def row(label: str, fn: Any) -> str:
        return f"| {label} | " + " | ".join(cell(fn(c)) for c in cands) + " |"

    def frozen_row(label: str, field: str, fmt: Any) -> list[str]:
        return [row(f"{label}, frozen backbone (estimate)", lambda c: _frozen(c, field, fmt))] if pretrained else []

    memory = f"training memory on {hw['name']}"
    duration = f"training time, {a['epochs'] or 'the configured'} epochs x {a['full_samples']:,} samples"
    lines = [
        f"# Technology selection: {doc['family'].replace('_', ' ')}", "", f"> {planner_line(doc['planner'])}", "",
        f"**Chosen: {chosen['label']} (`{chosen['key']}`).** {cell(doc['choice_rationale'])}", "",
        "Every candidate below is generated in `src/*/models/components/`; switch with `model=<key>`.", "",
        "## Comparison", "",
        "| | " + " | ".join(f"`{c['key']}`" + (" (chosen)" if c["key"] == doc["chosen"] else "") for c in cands) + " |",
        "|---|" + "---|" * len(cands),
        row("model", lambda c: c["label"]),
        row("kind", _kind),
        *([row("language", lambda c: {**LANGUAGE, "multi": "multilingual"}.get(c.get("language") or "", "the data's own vocabulary"))]
          if any(c.get("language") for c in cands) else []),
        row("parameters (measured)", lambda c: f"{c['params']:,}" if c["params"] else PENDING),
        *([row("parameters with the weights' vocabulary (the estimates use them)",
               lambda c: f"{c['params_with_weights']:,}" if c.get("params_with_weights") else "as measured")]
          if any(c.get("params_with_weights") for c in cands) else []),
        row("measured at input", lambda c: c.get("input_shape") or PENDING),
        row("forward FLOPs / sample (measured)", lambda c: human(c["flops_per_sample"], "FLOP")),
        row("activations / sample (measured)", lambda c: human(c["activations_per_sample"])),
        row("CPU latency, batch 1 (measured)", lambda c: f"{c['cpu_latency_ms']:.3f} ms" if c["cpu_latency_ms"] else PENDING),
        row(f"{memory}, every weight trained (estimate)", lambda c: _gb(c["train_memory_gb"])),
        *frozen_row(memory, "train_memory_gb_frozen", _gb),
        row(f"{duration}, every weight trained (estimate)", lambda c: _duration(c["train_hours"])),
        *frozen_row(duration, "train_hours_frozen", _duration),
        row("against the requirement", _verdict),
        row("expected performance (cited)", lambda c: c["expected_performance"]),
        row("strengths", lambda c: "; ".join(c["strengths"])),
        row("weaknesses", lambda c: "; ".join(c["weaknesses"])),
        row("constraints", lambda c: "; ".join(c["constraints"])), "",
        "## Decision", "", *_decision(doc, chosen, sla), "",
        "## Datasets", "",
        "| | mini (written to `data/mini/` at generation) | full (you provide it) |", "|---|---|---|",
        f"| name | {cell(chosen['datasets']['mini']['name'])} | {cell(chosen['datasets']['full']['name'])} |",
        f"| origin / size | {cell(chosen['datasets']['mini']['origin'])} | {cell(chosen['datasets']['full']['size'])} |",
        f"| licence | {cell(chosen['datasets']['mini']['licence'])} | {cell(chosen['datasets']['full']['licence'])} |",
        f"| where the loader expects it | `data/mini/` | {cell(chosen['datasets']['full']['layout'])} |", "",
        "## How the figures were obtained", "",
        f"- **Measured** by `nox -s setup` in the project venv ({_status(doc)}), by instantiating each model from "
        "its config at the mini data's sizes (classes, features, vocabulary), on the first training sample as the data "
        "module feeds it (images at `model.input_size`): parameters, forward FLOPs (`torch.utils.flop_counter`; "
        "matmuls and convolutions), leaf-module output elements per sample, median CPU latency of 30 batch-1 "
        "forward passes. Vocabulary-sized layers grow with the full data's vocabulary."
        + (" Pretrained candidates are built with `model.pretrained=false`: the same architecture with random weights, "
           "so measuring needs nothing under `weights/`." if pretrained else "")
        + (" A text encoder built so has the mini data's vocabulary; with its weights, its word embeddings have its "
           "tokenizer's: the row of parameters with the weights' vocabulary adds those rows, and the memory estimates "
           "use it." if any(c.get("language") for c in cands) else ""),
        f"- **Training memory, every weight trained** = {BYTES_PER_PARAM} B x parameters (fp32 weights, gradients, Adam "
        f"moments) + activation bytes x activations x batch {a['batch_size'] or PENDING} ({a['precision'] or PENDING}) + "
        f"{CONTEXT_GB} GB CUDA context.",
        f"- **Training time, every weight trained** = {TRAIN_FLOPS_FACTOR} x forward FLOPs x {a['full_samples']:,} samples "
        f"({a['samples_source']}) x {a['epochs'] or PENDING} epochs / ({hw['name']} peak "
        f"{hw['fp32_tflops']} TFLOP/s fp32, {hw['tensor_tflops']} TFLOP/s tensor x utilisation {a['utilisation']}). "
        "Data loading is not modelled: read it as a lower bound.",
        *([f"- **Frozen backbone** (`model.freeze_backbone=true`; measured with it: trainable parameters and the "
           f"activations that require grad): memory = {WEIGHT_BYTES} B x parameters + {OPTIMISER_BYTES} B x trainable "
           f"parameters + activation bytes x (head activations + {WORKING_SET} x the largest activation) x batch + "
           f"{CONTEXT_GB} GB; time = forward FLOPs + {BACKWARD_FACTOR} x {HEAD_FLOPS_PER_PARAM} FLOPs x trainable "
           "parameters per sample, at the same peak and utilisation."] if pretrained else []),
        f"- Hardware: **{hw['name']}** ({hw['source']}), {hw['memory_gb']} GB.",
        "- Every constant and its source: the docstring of `validators/resources.py`.",
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


def _decision(doc: dict[str, Any], c: dict[str, Any], sla: dict[str, Any]) -> list[str]:
    """The choice against each dimension of the requirement: data size, hardware and memory, latency, language."""
    hw, a, req = doc["hardware"], doc["assumptions"], doc.get("requirement") or {}
    source = "stated in the requirement" if a["samples_source"] == "requirement" else a["samples_source"]
    out = [f"- **Data:** {a['full_samples']:,} samples ({source}); the planner counts 50,000 or more as large."]
    need = f"{_gb(c['train_memory_gb'])} with every weight trained"
    if c.get("train_memory_gb_frozen") is not None:
        need += f", {_gb(c['train_memory_gb_frozen'])} with a frozen backbone"
    accel = f"; the accelerator answer is `{req['accelerator']}`" if req.get("accelerator") else ""
    out.append(f"- **Hardware:** {hw['name']} ({hw['source']}), {hw['memory_gb']:g} GB{accel}. `{c['key']}` needs {need}"
               + (f" at batch {a['batch_size']}." if a["batch_size"] else "."))
    latency = sla.get("latency_ms")
    if latency is None:
        out.append("- **Latency:** the requirement states no latency bound.")
    else:
        measured = (f"`{c['key']}` measured {c['cpu_latency_ms']:.3f} ms per sample on this CPU" if c["cpu_latency_ms"]
                    else f"`{c['key']}`'s latency: {PENDING}")
        out.append(f"- **Latency:** the requirement asks <= {latency:g} ms; {measured}, before serving overhead "
                   "(stage C measures the served p95).")
    if req.get("language"):
        fit = [f"`{x['key']}`" for x in doc["candidates"] if x.get("language") in (req["language"], "multi")]
        out.append(f"- **Language:** the texts read as {LANGUAGE[req['language']]}; the encoders for it: {', '.join(fit)} "
                   "(the baselines learn the data's own vocabulary).")
    budget = sla.get("budget")
    if budget and budget.get("unit") == "GPU-hours" and c["train_hours"] is not None:
        ok = c["train_hours"] <= budget["amount"]
        out.append(f"- **Budget:** {_duration(c['train_hours'])} estimated against {budget['amount']:g} GPU-hours: "
                   f"{'fits' if ok else 'does NOT fit'}.")
    if c.get("issues"):
        fits = [f"`{x['key']}`" for x in doc["candidates"] if x.get("verdict") == "fits"]
        out.append(f"- **The chosen model is {c['verdict']}:** {'; '.join(c['issues'])}."
                   + (f" Candidates that fit: {', '.join(fits)}." if fits else ""))
    elif c.get("verdict") == "fits":
        out.append(f"- **`{c['key']}` fits** every stated limit.")
    out += [f"- `{x['key']}` is {x['verdict']}: {'; '.join(x['issues'])}."
            for x in doc["candidates"] if x.get("issues") and x["key"] != c["key"]]
    return out


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
