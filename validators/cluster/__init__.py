"""Stages D2 and D4: the relocatable, cache-free .venv a compute node runs, the pretrained weights it loads, and
training jobs on a local process, a SLURM cluster or the Qizhi platform, each recorded in a ledger (jobs/)."""

from __future__ import annotations

from .ledger_gate import rule_jobs
from .venv_check import rule_cluster_venv
from .weights_gate import rule_pretrained_weights

GATES: dict[str, list] = {"D2": [rule_cluster_venv, rule_pretrained_weights], "D4": [rule_jobs]}
