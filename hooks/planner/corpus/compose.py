"""How the family classifier's training corpus was composed (an authoring aid: run by hand, never at copy time).

    python hooks/planner/corpus/compose.py     # rewrites hooks/planner/corpus/<family>.yaml from the seeds

The seeds (seeds_*.yaml) are hand-written: per family and language, sentence templates with slots, short
task names ("loan default prediction", "负荷预测") with short frames, the slot fillers (a subject and where it comes from, across medicine, finance, industry, logistics, energy,
retail, science, agriculture, education, ...), free-standing texts, and the constraint clauses a
researcher adds (latency, accuracy or error targets, data size, GPU, deadline, budget, deployment).
Each composed text is one template with one filler, and sometimes a context sentence and one to three
clauses in random order. A fixed seed makes it deterministic. The corpus files are the committed
artifact: the classifier is trained from them (`nox -s classifier`), not from this script.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SEED = 13
PER_LANGUAGE = 600  # texts per family and language
NAMED = 60          # of which short task names ("loan default prediction", "负荷预测") in a short frame
GPU_MEMORY = {"T4": 16, "A100": 80, "V100": 32, "RTX 4090": 24, "RTX 3090": 24, "L4": 24, "A10": 24, "H100": 80}
NUMBERS = {
    "ms": ["5", "10", "20", "30", "50", "80", "100", "150", "200", "300", "500"], "sec": ["0.5", "1", "2"],
    "qps": ["50", "100", "200", "500", "1000", "2,000", "5000"], "pct": ["80", "85", "88", "90", "92", "95", "97", "99"],
    "d2": ["7", "75", "8", "85", "9", "92", "95"], "err": ["0.5", "2", "5", "10", "50", "100", "500", "1,500"],
    "pct_small": ["3", "5", "8", "10", "12", "15"], "small": ["300", "500", "800", "1,200"],
    "n": ["2,000", "8,000", "15,000", "40k", "120,000", "300k", "1.5 million", "60,000"], "wan": ["1", "2", "3", "5", "10", "50"],
    "cols": ["12", "25", "40", "80", "150"], "years": ["2", "3", "5", "8", "10"], "freq": ["hourly", "daily", "weekly", "15-minute"],
    "weeks": ["2", "3", "4", "6", "8"], "months": ["1", "2", "3"], "days": ["10", "20", "45"], "weeks_zh": ["两", "三", "四", "六"],
    "months_zh": ["一", "两", "三"], "money": ["2,000", "5,000", "10,000", "50,000"], "gpuh": ["100", "200", "500", "1000"],
}
DATA_KIND = {"image_classification": "data_image", "text_classification": "data_text",
             "tabular_classification": "data_tabular", "tabular_regression": "data_tabular",
             "time_series_forecasting": "data_series"}
REGRESSION = {"tabular_regression", "time_series_forecasting"}


def load_seeds() -> dict:
    """Every seeds_*.yaml, in name order; a family a later file names again gets its lists appended
    (seeds_broad.yaml and seeds_contrast.yaml add templates, slots and free texts to the families of the other files)."""
    seeds: dict = {}
    for path in sorted(HERE.glob("seeds_*.yaml")):
        for key, value in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            if key not in seeds:
                seeds[key] = value
                continue
            for lang, lists in value.items():
                for name, items in lists.items():
                    seeds[key][lang][name] = seeds[key][lang][name] + items
    return seeds


def fill(text: str, fills: dict, rng: random.Random) -> str:
    gpu = rng.choice(fills["gpu"])
    values = {k: rng.choice(v) for k, v in {**NUMBERS, **fills}.items()}
    values.update(gpu=gpu, mem=str(GPU_MEMORY[gpu]))
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], text)


def clauses(family: str, lang: str, seeds: dict, rng: random.Random, extra: float) -> list[str]:
    table = seeds["_clauses"][lang]
    kinds = ["latency", "throughput", "quality_reg" if family in REGRESSION else "quality_cls", DATA_KIND[family],
             "hardware", "deadline", "budget", "deploy"]
    out = []
    if rng.random() < extra:
        out = [fill(rng.choice(table[k]), seeds["_clauses"]["fill"], rng) for k in rng.sample(kinds, rng.randint(1, 3))]
    if rng.random() < 0.15:
        out.insert(0 if rng.random() < 0.7 else len(out), fill(rng.choice(table["context"]), seeds["_clauses"]["fill"], rng))
    return out


def compose(family: str, lang: str, seeds: dict, rng: random.Random) -> list[str]:
    spec, named = seeds[family][lang], seeds[f"{family}_names"][lang]
    combos = [(t, s) for t in spec["templates"] for s in spec["slots"]]
    names = [(t, n) for t in named["templates"] for n in named["names"]]
    rng.shuffle(combos)
    rng.shuffle(names)
    texts = [(template.format(n=name), 0.7) for template, name in names[:NAMED]]
    for template, slot in combos[: PER_LANGUAGE - NAMED - len(spec["free"])]:
        core = template.format(**dict(zip("abc", slot, strict=False)))
        texts.append((core, 0.6))
    texts += [(free, 0.3) for free in spec["free"]]
    out = []
    for core, extra in texts:
        core = core[0].upper() + core[1:] if lang == "en" else core
        out.append((" " if lang == "en" else "").join([core, *clauses(family, lang, seeds, rng, extra)]).strip())
    rng.shuffle(out)
    return out


def main() -> None:
    seeds, rng = load_seeds(), random.Random(SEED)
    for family in [f for f in seeds if not f.startswith("_") and not f.endswith("_names")]:
        texts = compose(family, "en", seeds, rng) + compose(family, "zh", seeds, rng)
        lines = [f"# Training corpus of the family classifier: {family}, {len(texts)} texts (half Chinese).",
                 "# Composed once from seeds_*.yaml by compose.py, then committed; `nox -s classifier` trains on it.",
                 f"family: {family}", "texts:"]
        lines += [f"  - {json.dumps(t, ensure_ascii=False)}" for t in texts]
        (HERE / f"{family}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{family}: {len(texts)} texts")


if __name__ == "__main__":
    main()
