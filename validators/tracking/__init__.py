"""Stages D1 and D5: W&B offline in every run, and the sync agent that uploads each finished offline
run exactly once (a SQLite ledger beside the watched folder, `wandb sync` one run at a time)."""

from __future__ import annotations

from .offline import rule_wandb_offline

GATES: dict[str, list] = {"D1": [rule_wandb_offline]}
