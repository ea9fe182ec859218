"""Wall time of the two chains on a fresh project: `nox -s project`, then `nox -s docker`, each called
twice (cold: the first call on the fresh project; warm: the second, which should find nothing to do).

    PYTHONPATH=. python benchmarks/chains_bench.py [--family tabular_regression] [--docker] [--keep DIR]

One run each, not a timed test. "Cold" means a fresh project, not a cold machine: uv's wheel cache,
the Docker layer cache and the base image are whatever this machine already holds (say which when
you report; --fresh-images removes the project's images and the base image first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parent.parent


def nox(root: Path, *args: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nox", *args], cwd=root, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    out = done.stdout + done.stderr
    if done.returncode != 0:
        raise SystemExit(f"nox {' '.join(args)} failed after {seconds:.0f} s:\n{out[-4000:]}")
    return seconds, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="tabular_regression")
    parser.add_argument("--docker", action="store_true", help="time `nox -s docker` too (needs a running engine)")
    parser.add_argument("--fresh-images", action="store_true", help="remove the base and project images first")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    args = parser.parse_args()
    where = args.keep or Path(tempfile.mkdtemp(prefix="chains-bench-"))
    root = where / "bench_project"
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    copier.run_copy(str(ROOT), root, data={"project_name": "bench_project", "task_family": args.family},
                    defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    rows = [("copier copy", time.perf_counter() - start)]
    chains = ["project", "docker"] if args.docker else ["project"]
    if args.fresh_images:
        images = subprocess.run(["docker", "images", "-q", "--filter", "reference=bench_project*",
                                 "--filter", "reference=local/*-python:base"], capture_output=True, text=True).stdout.split()
        if images:
            subprocess.run(["docker", "rmi", "-f", *images], capture_output=True)
    for chain in chains:
        for call in ("cold", "warm"):
            seconds, out = nox(root, "-s", chain)
            last = [line for line in out.splitlines() if f"{chain}: " in line][-1].split(f"{chain}: ", 1)[1]
            rows.append((f"nox -s {chain} ({call})", seconds))
            print(f"nox -s {chain} ({call}): {seconds:.1f} s; {last}", flush=True)
    if args.docker:
        nox(root, "-s", "deploy", "--", "--down")
    print(json.dumps({"machine": f"{platform.node()} {os.cpu_count()} CPUs", "family": args.family,
                      "seconds": {k: round(v, 1) for k, v in rows}}, indent=2))
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
