"""tech.md's parameter counts against the instantiated models, and the pretrained ones against their published counts.

    PYTHONPATH=. python benchmarks/tech_params.py                     # every family; prints Markdown tables
    PYTHONPATH=. python benchmarks/tech_params.py image_classification

For each family it generates a project (copier, the committed template), runs its own `nox -s setup`
(the project venv, then `finish-setup`: tech.md measured), and then, in the project venv:

- **instantiated**: every candidate built by its own config with this script's code (`load_config`,
  `train.build`; a pretrained model with `model.pretrained=false`, as tech.md measures it), its
  parameters counted. It must equal tech.md's count (the exit status says whether all do).
- **hub architecture**: a pretrained candidate's `transformers` model built from the component's
  architecture (`arch`, its HF config) as the hub checkpoint has it: 3 input channels and 1000
  classes for the ImageNet backbones; for the text encoders, the backbone without a head
  (`AutoModel`) over the checkpoint's vocabulary (the component's published table), which is what
  model cards count. `pretrained: false` builds over the mini data's own channels and vocabulary, so
  the two differ by the stem (images) or the embedding table (text): the table says by how much.
- **published**: the count the paper, torchvision's weight tables or the model card gives, with its source.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from hooks.planner.catalog import load_catalog  # noqa: E402
from validators.frontmatter import split  # noqa: E402

# (parameters, source): exact where the source gives them exactly, else as the source rounds them
PUBLISHED = {
    "resnet18": (11_689_512, "torchvision ResNet18_Weights.IMAGENET1K_V1 (He et al. 2016: 11.7M)"),
    "resnet50": (25_557_032, "torchvision ResNet50_Weights.IMAGENET1K_V1 (He et al. 2016: 25.6M)"),
    "convnext_tiny": (28_589_128, "torchvision ConvNeXt_Tiny_Weights.IMAGENET1K_V1 (Liu et al. 2022: 28M)"),
    "distilbert": (66_000_000, "Sanh et al. 2019, Table 3: 66M"),
    "mdistilbert": (134_000_000, "the distilbert-base-multilingual-cased model card: 134M"),
}

COUNT = r"""
import json, sys
sys.path.insert(0, "src")
from {pkg}.config import load_config
from {pkg}.train import build

out = {{}}
for key in {models!r}:
    cfg = load_config(["model=" + key])
    if "pretrained" in cfg.model:
        cfg = load_config(["model=" + key, "model.pretrained=false"])
    _, module = build(cfg)
    row = {{"instantiated": sum(p.numel() for p in module.model.parameters())}}
    component = module.model
    arch = getattr(component, "arch", None)
    if arch is not None and "pretrained" in cfg.model:
        from transformers import AutoConfig, AutoModel, AutoModelForImageClassification
        if "num_channels" in arch:   # an ImageNet backbone: 3 channels, 1000 classes, as the hub checkpoint
            hub = AutoConfig.for_model(**{{**arch, "num_channels": 3, "num_labels": 1000}})
            net = AutoModelForImageClassification.from_config(hub)
        else:                        # a text encoder without its head, over the checkpoint's vocabulary
            vocab = type(component).published[1]["vocab_size"]
            net = AutoModel.from_config(AutoConfig.for_model(**{{**arch, "vocab_size": vocab}}))
            row["vocab"] = [arch["vocab_size"], vocab]
        row["hub"] = sum(p.numel() for p in net.parameters())
    out[key] = row
print(json.dumps(out))
"""


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def family_rows(family: str, catalog: dict, workdir: Path) -> tuple[list[dict], dict]:
    import copier

    dst = workdir / family / "bench_project"
    start = time.perf_counter()
    copier.run_copy(str(ROOT), dst, data={"project_name": "bench_project", "task_family": family},
                    defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    copy_s = time.perf_counter() - start
    start = time.perf_counter()
    run([sys.executable, "-m", "nox", "-s", "setup"], dst)
    setup_s = time.perf_counter() - start
    tech = split((dst / "docs/plan/tech.md").read_text(encoding="utf-8"))[0]
    models = list(catalog[family]["models"])
    accelerator = yaml.safe_load((dst / ".copier-answers.yml").read_text(encoding="utf-8"))["accelerator"]
    python = str(dst / f".venvs/debug-{accelerator}/bin/python")  # the venv `nox -s setup` built
    start = time.perf_counter()
    counted = json.loads(run([python, "-c", COUNT.format(pkg="bench_project", models=models)], dst).stdout)
    count_s = time.perf_counter() - start
    start = time.perf_counter()
    run([python, "-m", "validators", "check", "--stages", "A2"], dst)  # the A2 gate: parameter counts only
    gate_s = time.perf_counter() - start
    rows = [{"family": family, "key": c["key"], "kind": c.get("kind", "baseline"), "tech_md": c["params"],
             "input": c.get("input_shape"), **counted[c["key"]]} for c in tech["candidates"]]
    return rows, {"copy_s": copy_s, "setup_s": setup_s, "count_s": count_s, "gate_s": gate_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", help="default: every family of the catalog")
    parser.add_argument("--keep", type=Path, help="generate the projects here and keep them (default: a temporary folder)")
    args = parser.parse_args()
    catalog = load_catalog()
    families = args.families or list(catalog)
    rows, times = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        for family in families:
            family_result, times[family] = family_rows(family, catalog, workdir)
            rows += family_result
    print("| family | model | kind | tech.md params | instantiated | match | hub architecture | published (source) |"
          " measured at |\n|---|---|---|---:|---:|---|---:|---|---|")
    for r in rows:
        hub = f"{r['hub']:,}" if "hub" in r else "—"
        if "vocab" in r:
            hub += f" (vocabulary {r['vocab'][1]:,}; tech.md's: {r['vocab'][0]:,})"
        published = PUBLISHED.get(r["key"])
        pub = f"{published[0]:,} ({published[1]})" if published else "—"
        print(f"| {r['family']} | `{r['key']}` | {r['kind']} | {r['tech_md']:,} | {r['instantiated']:,} | "
              f"{'yes' if r['tech_md'] == r['instantiated'] else 'NO'} | {hub} | {pub} | {r['input']} |")
    print("\n| family | copier copy (s) | nox -s setup: venv + measure (s) | count in the venv (s) | A2 gate (s) |"
          "\n|---|---:|---:|---:|---:|")
    for family, t in times.items():
        print(f"| {family} | {t['copy_s']:.1f} | {t['setup_s']:.1f} | {t['count_s']:.1f} | {t['gate_s']:.1f} |")
    return 0 if all(r["tech_md"] == r["instantiated"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
