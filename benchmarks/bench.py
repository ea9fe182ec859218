"""Benchmarks of the template: copier copy, venv setup (uv vs pip), train_smoke, Lightning vs plain loop.

    nox -s bench                     # all families; writes benchmarks/results/{results.json,table.md}
    python benchmarks/bench.py --families tabular_classification --skip-pip
    python benchmarks/bench.py --skip-pip --window 20 --rounds 5 --threads 1   # throughput.py's settings

Not a timed test: numbers depend on the machine and on warm package caches (both installers
get a warm cache: each installs the same requirements once before the timed run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hooks.planner.catalog import load_catalog  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout


def find_links_args() -> list[str]:
    folders = (os.environ.get("UV_FIND_LINKS") or os.environ.get("PIP_FIND_LINKS") or "").split()
    return [arg for f in folders for arg in ("--find-links", f)]


def bench_setup(project: Path, skip_pip: bool) -> dict[str, float]:
    """Seconds to build the debug-cpu venv from requirements-cpu.txt: uv, then pip (warm caches)."""
    req = str(project / "requirements-cpu.txt")
    uv = shutil.which("uv") or "uv"
    out = {}
    for _ in ("warm", "timed"):  # the first run warms the caches
        venv = project / ".venvs" / "bench-uv"
        shutil.rmtree(venv, ignore_errors=True)
        t0 = time.perf_counter()
        timed([uv, "venv", "-q", "--python", sys.executable, str(venv)], project)
        timed([uv, "pip", "install", "-q", "--python", str(venv / "bin/python"), "-r", req, *find_links_args()], project)
        out["uv_s"] = round(time.perf_counter() - t0, 1)
        if skip_pip:
            continue
        venv = project / ".venvs" / "bench-pip"
        shutil.rmtree(venv, ignore_errors=True)
        t0 = time.perf_counter()
        timed([sys.executable, "-m", "venv", str(venv)], project)
        timed([str(venv / "bin/python"), "-m", "pip", "install", "-q", "-r", req, *find_links_args()], project)
        out["pip_s"] = round(time.perf_counter() - t0, 1)
    for name in ("bench-uv", "bench-pip"):
        shutil.rmtree(project / ".venvs" / name, ignore_errors=True)
    return out


def main() -> int:
    catalog = load_catalog()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(catalog), choices=list(catalog))
    parser.add_argument("--skip-pip", action="store_true", help="time uv only")
    parser.add_argument("--work", type=Path, default=RESULTS / "work")
    parser.add_argument("--window", type=float, default=20.0, help="throughput.py: seconds per timed window, at least")
    parser.add_argument("--rounds", type=int, default=3, help="throughput.py: alternating plain/Lightning rounds")
    parser.add_argument("--threads", type=int, help="throughput.py: torch threads for both loops (default: torch's own)")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    rows = []
    for i, family in enumerate(args.families):
        dst = args.work / family / "bench_project"
        t0 = time.perf_counter()
        copier.run_copy(str(ROOT), dst, data={"project_name": "bench_project", "task_family": family},
                        defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
        row = {"family": family, "copy_s": round(time.perf_counter() - t0, 2)}
        if i == 0:
            row.update(bench_setup(dst, args.skip_pip))
        nox = [sys.executable, "-m", "nox", "-s"]
        row["setup_s"] = round(timed([*nox, "setup"], dst)[0], 1)
        row["train_smoke_s"] = round(timed([*nox, "train_smoke"], dst)[0], 1)
        result = dst / "logs" / "throughput.json"
        timed([str(dst / ".venvs/debug-cpu/bin/python"), str(ROOT / "benchmarks/throughput.py"), "--out", str(result),
               "--window", str(args.window), "--rounds", str(args.rounds),
               *(["--threads", str(args.threads)] if args.threads else [])], dst)
        row.update(json.loads(result.read_text()))
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}", "rows": rows}
    (RESULTS / "results.json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = [
        "| family | model | batch | copier copy (s) | setup uv (s) | train_smoke (s) | plain loop (samples/s) | "
        "Lightning (samples/s) | ratio, median (min-max) | rounds | window (s, shortest) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        spread = r["ratio_spread"]
        lines.append(f"| {r['family']} | {r['model']} | {r['batch_size']} | {r['copy_s']} | {r['setup_s']} | {r['train_smoke_s']} | "
                     f"{r['plain_samples_per_s']:,.0f} | {r['lightning_samples_per_s']:,.0f} | "
                     f"{spread['median']:.3f} ({spread['min']:.3f}-{spread['max']:.3f}) | {r['rounds']} | {r['window_s_min']} |")
    first = rows[0]
    if "uv_s" in first:
        lines.append("")
        lines.append(f"Cold venv build from requirements-cpu.txt (warm caches): uv {first['uv_s']} s"
                     + (f", pip {first['pip_s']} s ({first['pip_s'] / first['uv_s']:.1f}x)" if "pip_s" in first else ""))
    table = "\n".join(lines)
    (RESULTS / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
