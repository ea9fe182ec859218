"""Stages C1-C3: the Docker engine check, the air-gapped image build, the container check, deploy."""

from __future__ import annotations

GATES: dict[str, list] = {}  # C1-C3 gate by exit code and report; no re-readable rule yet
