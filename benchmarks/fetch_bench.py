"""`fetch-weights` against the Hugging Face hub stand-in on this machine: bytes and seconds per model size.

    PYTHONPATH=. python benchmarks/fetch_bench.py [--rounds 5] [--sizes tiny 47 412] [--json out.json]

Sizes: `tiny` is the stand-in's own microsoft/resnet-18 (a model saved with save_pretrained, about 30 KB: the
fixed cost of a fetch); a number N is a repository with that model's config.json and an N MB model.safetensors of
random bytes (47: ResNet-18's real file, 412: bert-base-chinese's), served as an LFS file through the stand-in's
CDN redirect. Each round runs `python -m validators fetch-weights MODEL --force` in a process of its own, as
`nox -s fetch_weights` does, rounds alternating between the sizes. Reported per size: the bytes, the seconds the
command itself prints (resolve, listing, each file's HEAD and GET, both hashes, the move into weights/, the
manifest) and the wall clock of the whole process (Python and huggingface_hub start-up too), median and min-max
over the rounds, and the median throughput. Everything is on 127.0.0.1: what is measured is the client's own cost,
not a network.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.helpers.hf_server import HubServer  # noqa: E402

REPO = "microsoft/resnet-18"
DONE = re.compile(r"^(\w+): (\d+) files, ([\d,]+) bytes in ([\d.]+) s ->", re.MULTILINE)


def project(root: Path, models: dict[str, str]) -> Path:
    """The least a project needs for fetch-weights: answers, configs/train.yaml, configs/hub.yaml."""
    (root / "configs").mkdir(parents=True)
    (root / ".copier-answers.yml").write_text("project_name: bench\ntask_family: image_classification\n")
    (root / "configs/train.yaml").write_text("defaults:\n  model: tiny\n")
    lines = "".join(f"  {name}: {{repo: {repo}, revision: main}}\n" for name, repo in models.items())
    (root / "configs/hub.yaml").write_text(f"models:\n{lines}dataset: null\n")
    return root


def fetch(root: Path, env: dict[str, str], model: str) -> tuple[int, float, float]:
    """(bytes, seconds the command reports, wall seconds of the process)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "validators", "--project", str(root), "fetch-weights", model, "--force"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    found = DONE.search(done.stdout)
    if done.returncode != 0 or not found:
        raise SystemExit(f"fetch-weights {model} failed:\n{done.stdout}{done.stderr}")
    return int(found[3].replace(",", "")), float(found[4]), wall


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "47", "412"], help="tiny, or megabytes of model.safetensors")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fetch-bench-") as tmp, HubServer() as hub:
        config = hub.repo(REPO).files["config.json"]
        repos = {}
        for size in args.sizes:
            if size == "tiny":
                repos["tiny"] = REPO
            else:
                repos[f"m{size}"] = hub.add(f"bench/model-{size}mb", {"config.json": config,
                                                                      "model.safetensors": os.urandom(int(size) * 10**6)}).repo_id
        root = project(Path(tmp) / "bench", repos)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update({"HF_ENDPOINT": hub.url, "HF_HOME": str(Path(tmp) / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"})
        figures: dict[str, dict[str, list[float]]] = {m: {"bytes": [], "seconds": [], "wall": []} for m in repos}
        for _ in range(args.rounds):
            for model in repos:
                size, seconds, wall = fetch(root, env, model)
                for key, value in (("bytes", size), ("seconds", seconds), ("wall", wall)):
                    figures[model][key].append(value)
    print(f"fetch-weights against the hub stand-in (127.0.0.1), {args.rounds} rounds, median (min-max); Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{'model':<8} {'bytes':>13} {'command s':>20} {'process s':>20} {'MB/s':>8}")
    for model, f in figures.items():
        rate = statistics.median(b / s / 1e6 for b, s in zip(f["bytes"], f["seconds"], strict=True))
        print(f"{model:<8} {int(f['bytes'][0]):>13,} {spread(f['seconds']):>20} {spread(f['wall']):>20} {rate:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
