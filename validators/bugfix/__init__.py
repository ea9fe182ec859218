"""Stage B3: the bounded fix loop around the 1-epoch validation run, and its report."""

from __future__ import annotations

from . import report

GATES = {"B3": [report.rule_bugfix_report]}
