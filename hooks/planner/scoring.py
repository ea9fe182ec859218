"""Scoring rules of the offline planner: how clear is each requirement item, 0..1.

A score is the planner's confidence that a later stage can act on the item without asking.
Every item at or below 0.6 gets a clarification question and a follow-up strategy that says what
is assumed until a human answers (the stage-A1 gate of docs/stages.md).

| rule | score | when |
|---|---|---|
| S1 | 0.9 | SLA: a number, its unit and a bound ("under 50 ms", "不低于95%") |
| S2 | 0.8 | SLA: a number and unit, the bound implied by the metric ("50 ms latency") |
| S3 | 0.4 | SLA: a wish without a number ("real-time", "高精度") |
| S4 | 0.3 | SLA: not stated |
| F1 | 0.9 | family: the classifier is confident (p >= 0.5) and the cue words point to its family |
| F2 | 0.75 | family: a confident classifier and no deciding cue word, or an unsure one the cue words confirm |
| F3 | 0.5 | family: the classifier and the cue words point to different families (asked) |
| F4 | 0.3 | family: the classifier is unsure (p < 0.5) and no cue word decides |
| H1 | 0.9 | hardware: a GPU model is named, or CPU-only is stated |
| H2 | 0.7 | hardware: "GPU" without a model |
| H3 | 0.5 | hardware: not stated |
| D1 | 0.9 | data: a size and what the data is |
| D2 | 0.7 | data: one of the two |
| D3 | 0.4 | data: neither |
| P1 | 0.9 | problem: family clear (>= 0.75) and at least 8 words (or 15 CJK characters) |
| P2 | 0.6 | problem: short or unclear |
| C1 | 1.0 | compatibility fixed by the template (Python, torch, Lightning pins) |
| C2 | 0.8 | deployment target stated (Docker, cluster, edge, server, ...) |
| C3 | 0.5 | deployment target not stated |
| A1 | 0.9 | a clarification answered with a number the extractor reads |
| A2 | 0.7 | a clarification answered in words |
"""

from __future__ import annotations

from typing import Any

RULES: dict[str, tuple[float, str]] = {
    "S1": (0.9, "number, unit and bound stated"),
    "S2": (0.8, "number and unit stated; bound implied"),
    "S3": (0.4, "wish without a number"),
    "S4": (0.3, "not stated"),
    "F1": (0.9, "classifier confident and the cue words agree"),
    "F2": (0.75, "classifier confident without a deciding cue word, or unsure and confirmed by the cue words"),
    "F3": (0.5, "the classifier and the cue words disagree"),
    "F4": (0.3, "classifier unsure and no deciding cue word"),
    "H1": (0.9, "GPU model named or CPU-only stated"),
    "H2": (0.7, "GPU mentioned without a model"),
    "H3": (0.5, "hardware not stated"),
    "D1": (0.9, "size and kind of data stated"),
    "D2": (0.7, "size or kind of data stated"),
    "D3": (0.4, "data not described"),
    "P1": (0.9, "family clear and statement specific"),
    "P2": (0.6, "statement short or family unclear"),
    "C1": (1.0, "fixed by the template's pins"),
    "C2": (0.8, "deployment target stated"),
    "C3": (0.5, "deployment target not stated"),
    "A1": (0.9, "answered with a number"),
    "A2": (0.7, "answered in words"),
}
THRESHOLD = 0.6  # at or below: needs a clarification
CONFIDENT = 0.5  # the classifier's probability for its family at which it counts as confident (five families)


def rule(code: str) -> dict[str, Any]:
    score, why = RULES[code]
    return {"score": score, "rule": f"{code}: {why}"}


def sla_rule(finding: dict[str, Any] | None, wished: bool) -> str:
    if finding is not None:
        return "S1" if finding.get("bounded") else "S2"
    return "S3" if wished else "S4"


def family_rule(probability: float, family: str, cue_family: str | None) -> str:
    """probability: the classifier's for `family`, its choice; cue_family: the family the cue words alone point
    to (None: no cue word, or a tie)."""
    if cue_family is not None and cue_family != family:
        return "F3"
    confident = probability >= CONFIDENT
    if cue_family == family:
        return "F1" if confident else "F2"
    return "F2" if confident else "F4"


def hardware_rule(gpu: str | None, cpu_only: bool, gpu_mentioned: bool) -> str:
    if gpu or cpu_only:
        return "H1"
    return "H2" if gpu_mentioned else "H3"


def data_rule(size_stated: bool, kind_stated: bool) -> str:
    if size_stated and kind_stated:
        return "D1"
    return "D2" if size_stated or kind_stated else "D3"


def problem_rule(family_score: float, words: int, cjk_chars: int) -> str:
    return "P1" if family_score >= 0.75 and (words >= 8 or cjk_chars >= 15) else "P2"


def answer_rule(value_found: bool) -> str:
    return "A1" if value_found else "A2"


def needs_clarification(score: float) -> bool:
    return score <= THRESHOLD
