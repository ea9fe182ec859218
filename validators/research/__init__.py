"""Stages B1, B2 and B4: the rules decision, the environment and mini-data reports, the notebook, guidance."""

from __future__ import annotations

from . import env_report, guidance, mini_report, notebook, rules

GATES = {
    "B1": [rules.rule_rules_decision],
    "B2": [env_report.rule_env_check, mini_report.rule_mini_dataset, notebook.rule_notebook],
    "B4": [guidance.rule_guidance],
}
