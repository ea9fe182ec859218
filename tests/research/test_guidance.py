"""Stage B4's plan: batch ceiling, estimates and learning rate from tech.md's figures (validators/research/guidance.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from validators.frontmatter import join
from validators.project import Project
from validators.research.guidance import experiment, plan
from validators.resources import GPU_TABLE, estimate

from ..helpers import write_file


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path


def test_guidance_batch_ceiling_fits_the_gpu_and_quotes_tech_md(root):
    hw = {"name": "T4", "source": "named in the requirement", **GPU_TABLE["T4"]}
    cand = {"key": "big", "params": 1_000_000, "activations_per_sample": 10_000_000, "flops_per_sample": 5_000_000}
    assumptions = {"batch_size": 512, "epochs": 10, "precision": "32-true", "utilisation": 0.3, "full_samples": 100_000,
                   "samples_source": "catalog"}
    cand.update(estimate(cand, hw, batch_size=512, epochs=10, samples=100_000))
    tech = {"family": "image_classification", "chosen": "big", "hardware": hw, "assumptions": assumptions, "candidates": [cand]}
    write_file(root / "docs/plan/tech.md", join(tech, "# tech\n"))
    data = plan(Project(root))
    # (0.9 x 16 GB - 16 B x 1e6 - 0.5 GB) / (4 B x 1e7 per sample) = 347 -> 256, the power of two below
    assert (data["batch_size"]["min"], data["batch_size"]["recommended"], data["batch_size"]["max"]) == (32, 256, 256)
    assert data["estimates"]["train_memory_gb"] == cand["train_memory_gb"] == 20.996  # tech's batch 512 does not fit a T4
    assert data["estimates_at_max_batch"]["train_memory_gb"] == 10.756
    assert data["learning_rate"]["multi_node"] == 0.008 and data["measured"] == {"source": None}
    assert experiment(data) == (
        "# Full training on 2 nodes x 4 GPUs, written by `nox -s guidance` from reports/full_train_guidance.md.\n"
        "# Yours to edit (project-owned; guidance rewrites it). Run: python scripts/train.py experiment=full_ddp\n"
        "defaults:\n"
        "  data: full                     # configs/data/full.yaml: your dataset under data/full/\n"
        "  trainer: ddp_gpu               # one process per GPU (Lightning DDP); STRATEGY=fsdp in the scripts shards instead\n"
        "trainer:\n"
        "  num_nodes: 2                   # nodes (match #SBATCH --nodes)\n"
        "  devices: 4                     # GPUs per node (match #SBATCH --ntasks-per-node and --gres)\n"
        "data:\n"
        "  batch_size: 256                # per device: effective batch 2048\n"
        "optim:\n"
        "  lr: 0.008                      # scaled linearly with the effective batch\n"
        "run:\n"
        "  name: full_ddp                 # its runs are runs/<UTC timestamp>-full_ddp/\n")
