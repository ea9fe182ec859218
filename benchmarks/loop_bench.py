"""The air-gapped loop's wall time on this machine, split by step: one generated tabular project, then
`cluster_venv`, `submit --backend slurm --wait` (2 epochs), the sync agent, `results --pr` (twice: the
comment created, then updated) and `note`, each through the project's own nox session.

    PYTHONPATH=. python benchmarks/loop_bench.py [--keep DIR]

The W&B and GitHub services are the test stand-ins (tests/helpers/wandb_server.py, github_server.py) on
this host, so their network time is near zero: on a real login node add the upload. SLURM needs a
running cluster (.ci/slurm-up). One run, so the figures are indicative, not a median.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.helpers.github_server import ALL, GitHubServer  # noqa: E402
from tests.helpers.loop import KEY, TOKEN, Loop  # noqa: E402
from tests.helpers.slurm import slurm_up  # noqa: E402
from tests.helpers.wandb_server import WandbServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="generate the project here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    print(slurm_up(), file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp, WandbServer(api_key=KEY) as wb, \
            GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={5}) as gh:
        start = time.monotonic()
        loop = Loop.generate((args.keep or Path(tmp)) / "demo_project", wb.url, gh.url)
        generated = time.monotonic() - start
        loop.step("cluster_venv")
        job = loop.submit()
        loop.sync()
        loop.step("results", job, "--pr", "5")
        loop.step("results", job, "--pr", "5")
        loop.step("note", job)
    steps = loop.times[1:]  # from submit on
    print(f"copier copy + git commit: {generated:.1f} s; cluster_venv: {loop.times[0][1]:.1f} s (before the loop)\n")
    print("| step | seconds |\n|---|---|")
    for name, seconds in steps:
        print(f"| `nox -s {name}` | {seconds:.1f} |")
    print(f"| **submit to note** | **{sum(s for _, s in steps):.1f}** |")


if __name__ == "__main__":
    main()
