"""Stages A1-A5: the planning documents' gates, the build log, the review, the venv spec."""

from __future__ import annotations

from .. import update
from . import build_log, consistency, documents, review, venv_spec

GATES = {
    "A1": [documents.rule_requirements],
    "A2": [documents.rule_tech, documents.rule_tech_params],
    "A3": [documents.rule_task, build_log.rule_build_log],
    "A4": [review.rule_review_report, review.ruff, consistency.rule_readme, consistency.rule_imports,
           consistency.rule_config_keys, update.rule_no_conflicts],
    "A5": [venv_spec.rule_venv_md, venv_spec.rule_requirement_files, venv_spec.rule_spec_copies],
}
