"""A real single-node SLURM cluster for the tests, and a job `.venv` for the projects they generate.

    from tests.helpers.slurm import slurm            # noqa: F401  (a fixture: the cluster is up)
    def test_job(slurm, tmp_path): ...               # `slurm` is .ci/slurm-up's status line
    link_job_venv(project, tmp_path_factory)         # project/.venv -> a venv with torch, lightning, wandb

The cluster is .ci/slurm-up's (munged, slurmctld and slurmd on this host; .ci/run starts it before the
tests). The fixture skips only where SLURM is absent and cannot be installed (not root, or no apt-get);
a cluster that is installed but does not come up is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from uv import find_uv_bin

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


def link_job_venv(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point `project/.venv` at a venv that runs the project's training: this interpreter's packages
    (torch, lightning, omegaconf, pyyaml: the test venv) through a .pth, plus the project's pinned wandb,
    which the test venv lacks. Built once per test session, in a second or two from uv's cache.

    The jobs only need `source .venv/bin/activate && python scripts/train.py` to work; the real
    relocatable `.venv` (nox -s cluster_venv) is tested by the D2 tests.
    """
    venv = tmp_path_factory.getbasetemp() / "job-venv"
    if not (venv / "bin" / "python").exists():
        pin = next(line.strip() for line in (project / "requirements-cpu.txt").read_text(encoding="utf-8").splitlines()
                   if line.startswith("wandb=="))
        uv = find_uv_bin()  # the uv of the test venv (requirements/test.txt)
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        purelib = subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        (Path(purelib) / "_test_venv.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
        subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin/python"), pin], check=True)
    link = project / ".venv"
    link.unlink(missing_ok=True)
    link.symlink_to(venv, target_is_directory=True)
    return link

