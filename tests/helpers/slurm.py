"""A real single-node SLURM cluster for the tests.

    from tests.helpers.slurm import slurm            # noqa: F401  (a fixture: the cluster is up)
    def test_job(slurm, tmp_path): ...               # `slurm` is .ci/slurm-up's status line

The cluster is .ci/slurm-up's (munged, slurmctld and slurmd on this host; .ci/run starts it before the
tests). The fixture skips only where SLURM is absent and cannot be installed (not root, or no apt-get);
a cluster that is installed but does not come up is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from . import TEMPLATE

SLURM_UP = TEMPLATE / ".ci" / "slurm-up"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")


def slurm_up() -> str:
    """Run .ci/slurm-up (idempotent); its status line. A failure raises with its output."""
    done = subprocess.run([str(SLURM_UP)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f".ci/slurm-up failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def slurm() -> str:
    """The cluster is up; .ci/slurm-up's status line. Skips only where SLURM is absent and cannot be installed."""
    missing = [c for c in DAEMONS if shutil.which(c) is None and not Path("/usr/sbin", c).exists()]
    if missing and not (os.geteuid() == 0 and shutil.which("apt-get")):
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing), and installing slurm-wlm and munge"
                    " needs root and apt-get")
    return slurm_up()

