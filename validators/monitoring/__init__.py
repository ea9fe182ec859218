"""Stage C4: monitoring config from the SLA, spec drift against the running service, the README status."""

from __future__ import annotations

from . import monitor

GATES = {"C4": [monitor.rule_running_report]}
