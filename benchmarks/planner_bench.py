"""Planner benchmark: accuracy on the requirement tables, plan and training time, tech.md counts vs models.

    PYTHONPATH=. python benchmarks/planner_bench.py            # prints Markdown tables for the README

Accuracy is exact match per field (family, latency, throughput, accuracy, F1, error metric,
budget, deadline, GPU, GPU memory, CPU-only, dataset size) on two tables: the one the planner was
developed against (tests/data/planner_corpus.yaml) and a held-out one written before the family
classifier's corpus and never used for tuning (benchmarks/planner_holdout.yaml). Family accuracy is
also given per language, for the cue words alone (the planner before the classifier), and with the
share of texts whose family is asked because the classifier and the cue words disagree (rule F3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from hooks.planner import classifier  # noqa: E402
from hooks.planner.catalog import load_catalog  # noqa: E402
from hooks.planner.extract import language  # noqa: E402
from hooks.planner.offline import analyse, cue_evidence, infer_family, reading  # noqa: E402

FIELDS = ["family", "latency_ms", "throughput_per_s", "accuracy_pct", "f1_pct", "error_metric", "budget",
          "deadline_days", "gpu", "gpu_memory_gb", "cpu_only", "dataset_size"]
TABLES = {"development (tests/)": ROOT / "tests/data/planner_corpus.yaml",
          "held-out (benchmarks/)": ROOT / "benchmarks/planner_holdout.yaml"}


def normalise(value):
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def cue_words_alone(text: str, catalog: dict) -> str:
    """The family the planner chose before the classifier: most cue hits, ties to the catalog's first."""
    hits, _ = cue_evidence(text, catalog)
    order = list(catalog)
    return max(order, key=lambda f: (hits[f], -order.index(f)))


def load_table(path: Path) -> list[dict]:
    """A table's cases; an empty placeholder (`[]`, or comments only) is no cases."""
    return yaml.safe_load(path.read_text(encoding="utf-8")) or []


def accuracy(path: Path, catalog: dict) -> dict:
    cases = load_table(path)
    per_field = dict.fromkeys(FIELDS, 0)
    exact, misses, family = 0, [], {"en": [0, 0], "zh": [0, 0]}
    cues, asked = 0, 0
    for case in cases:
        expected = {f: case["expect"].get(f, False if f == "cpu_only" else None) for f in FIELDS}
        expected["family"] = case["family"]
        got = reading(case["text"], catalog)
        wrong = [f for f in FIELDS if normalise(got[f]) != normalise(expected[f])]
        for f in FIELDS:
            per_field[f] += f not in wrong
        exact += not wrong
        lang = family[language(case["text"])]
        lang[0], lang[1] = lang[0] + ("family" not in wrong), lang[1] + 1
        cues += cue_words_alone(case["text"], catalog) == case["family"]
        asked += infer_family(case["text"], catalog)["rule"].startswith("F3")
        misses += [f"{case['id']}.{f}: got {got[f]!r}, expected {expected[f]!r}" for f in wrong]
    n = max(1, len(cases))  # an empty table reads as 0 cases at 0.0%
    return {"cases": len(cases), "zh": family["zh"][1], "family": per_field["family"] / n,
            "family_en": family["en"][0] / max(1, family["en"][1]), "family_zh": family["zh"][0] / max(1, family["zh"][1]),
            "cues": cues / n, "asked": asked / n,
            "fields": sum(per_field.values()) / (n * len(FIELDS)), "exact": exact / n, "misses": misses}


def offline_time(cases: list[str], catalog: dict) -> dict:
    """analyse() per text (the classifier included), after loading the model once; and the classifier alone."""
    start = time.perf_counter()
    classifier.load_model.cache_clear()
    classifier.load_model()
    load_ms = (time.perf_counter() - start) * 1000
    times, inference = [], []
    for text in cases:
        start = time.perf_counter()
        analyse(text, catalog)
        times.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        classifier.predict_proba(text)
        inference.append((time.perf_counter() - start) * 1000)
    return {"mean_ms": statistics.mean(times), "max_ms": max(times), "load_ms": load_ms,
            "classifier_mean_ms": statistics.mean(inference), "classifier_max_ms": max(inference)}


def training_time() -> dict:
    """One training run as `nox -s classifier` does it (in memory: the shipped file is not rewritten)."""
    from hooks.planner.corpus.train import fit, load_corpus

    start = time.perf_counter()
    texts, labels = load_corpus()
    fit(texts, labels)
    return {"seconds": time.perf_counter() - start, "texts": len(texts)}


def llm_time(text: str, catalog: dict, runs: int) -> dict:
    from hooks.planner.llm import plan_with_llm
    from tests.helpers.llm_server import LLMServer, Reply

    family = reading(text, catalog)["family"]
    reply = json.dumps({"analysis": analyse(text, catalog, family), "model": next(iter(catalog[family]["models"])),
                        "choice_rationale": "benchmark"})
    times = []
    with LLMServer([Reply(reply)]) as server:
        os.environ.update(OPENAI_API_KEY="sk-bench", OPENAI_API_BASE=server.url, OPENAI_BASE_URL=server.url)
        plan_with_llm(text, catalog, family, "openai/bench", log=lambda _: None)  # import and first-call warm-up
        for _ in range(runs):
            start = time.perf_counter()
            plan_with_llm(text, catalog, family, "openai/bench", log=lambda _: None)
            times.append((time.perf_counter() - start) * 1000)
    return {"mean_ms": statistics.mean(times), "max_ms": max(times)}


COUNT = """
import json, sys
sys.path.insert(0, "src")
from {pkg}.config import load_config
from {pkg}.train import build
print(json.dumps({{k: sum(p.numel() for p in build(load_config(["model=" + k]))[1].model.parameters()) for k in {models!r}}}))
"""


def param_check(catalog: dict) -> list[dict]:
    import copier

    from validators.frontmatter import split

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in catalog:
            dst = Path(tmp) / family / "bench_project"
            start = time.perf_counter()
            copier.run_copy(str(ROOT), dst, data={"project_name": "bench_project", "task_family": family},
                            defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
            copy_s = time.perf_counter() - start
            start = time.perf_counter()  # what `nox -s setup` adds in the project venv (here: this interpreter)
            subprocess.run([sys.executable, "-m", "validators", "finish-setup"], cwd=dst, capture_output=True, check=True)
            setup_s = time.perf_counter() - start
            tech = split((dst / "docs" / "plan" / "tech.md").read_text(encoding="utf-8"))[0]
            models = list(catalog[family]["models"])
            counted = json.loads(subprocess.run([sys.executable, "-c", COUNT.format(pkg="bench_project", models=models)],
                                                cwd=dst, capture_output=True, text=True, check=True).stdout)
            for c in tech["candidates"]:
                rows.append({"family": family, "model": c["key"], "tech_md": c["params"], "instantiated": counted[c["key"]],
                             "copy_s": copy_s, "setup_s": setup_s})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-runs", type=int, default=10)
    parser.add_argument("--skip-params", action="store_true", help="skip generating one project per family")
    parser.add_argument("--skip-training", action="store_true", help="skip timing one training of the classifier")
    args = parser.parse_args()
    catalog = load_catalog()
    print("| table | cases (zh) | family | family, EN | family, ZH | cue words alone | family asked (F3) | all fields "
          "| every field exact |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for name, path in TABLES.items():
        r = results[name] = accuracy(path, catalog)
        if not r["cases"]:
            print(f"| {name} | 0 | to be measured | | | | | | |")
            continue
        print(f"| {name} | {r['cases']} ({r['zh']}) | {r['family']:.1%} | {r['family_en']:.1%} | {r['family_zh']:.1%} | "
              f"{r['cues']:.1%} | {r['asked']:.1%} | {r['fields']:.1%} | {r['exact']:.1%} |")
    for name, r in results.items():
        if not r["cases"]:
            print(f"  [{name}] no cases yet: the table is an empty placeholder")
        for miss in r["misses"]:
            print(f"  miss [{name}] {miss}")
    texts = [c["text"] for p in TABLES.values() for c in load_table(p)]
    off, llm = offline_time(texts, catalog), llm_time(texts[0], catalog, args.llm_runs)
    print(f"\n| plan time | mean (ms) | max (ms) |\n|---|---:|---:|\n| offline analysis (classifier included), {len(texts)} "
          f"texts | {off['mean_ms']:.2f} | {off['max_ms']:.2f} |\n| classifier inference alone | "
          f"{off['classifier_mean_ms']:.2f} | {off['classifier_max_ms']:.2f} |\n| loading the model, once per process | "
          f"{off['load_ms']:.1f} | |\n| litellm -> local server, {args.llm_runs} runs | {llm['mean_ms']:.1f} | {llm['max_ms']:.1f} |")
    if not args.skip_training:
        t = training_time()
        print(f"\ntraining the classifier once ({t['texts']} texts, scikit-learn): {t['seconds']:.1f} s; "
              f"model file {classifier.MODEL_PATH.stat().st_size / 1024:.0f} KiB")
    if not args.skip_params:
        rows = param_check(catalog)
        print("\n| family | model | tech.md params | instantiated | match |\n|---|---|---:|---:|---|")
        for r in rows:
            print(f"| {r['family']} | {r['model']} | {r['tech_md']:,} | {r['instantiated']:,} | "
                  f"{'yes' if r['tech_md'] == r['instantiated'] else 'NO'} |")
        copies = sorted({r["family"]: r["copy_s"] for r in rows}.values())
        print(f"\ncopier copy with the planner hook: {min(copies):.1f}-{max(copies):.1f} s per project")
        setups = [r["setup_s"] for r in rows]
        print(f"finish-setup (measure the models, the A3-A4 reports): {min(setups):.1f}-{max(setups):.1f} s per project")
        if any(r["tech_md"] != r["instantiated"] for r in rows):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
