"""Stages D1, D5 and D7: W&B offline in every run, the sync agent that uploads each finished offline
run exactly once (a SQLite ledger beside the watched folder, `wandb sync` one run at a time), and a
permanent note per experiment (notes/)."""

from __future__ import annotations

from .notes_gate import rule_notes
from .offline import rule_wandb_offline

GATES: dict[str, list] = {"D1": [rule_wandb_offline], "D7": [rule_notes]}
