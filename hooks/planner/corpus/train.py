"""Train the task-family classifier on the corpus and write hooks/planner/family_model.json (build time only).

    nox -s classifier                          # the locked scikit-learn, then this script
    python hooks/planner/corpus/train.py       # the same with whichever scikit-learn is installed

The corpus is hooks/planner/corpus/<family>.yaml, one file per family of catalog.yml. Training:

1. TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2) with the
   preprocessor hooks.planner.classifier.normalise, then LogisticRegression(C=10) (multinomial, lbfgs).
2. Pruning: keep the 5,000 n-grams with the largest absolute weight for any family, then fit both steps
   again on that vocabulary, so the shipped model is itself a fitted scikit-learn model.
3. Export: classes, intercepts, and per n-gram its idf and one weight per family, rounded to 7
   significant digits; the corpus's sha256 and these parameters are recorded in the file.

The output depends only on the corpus, the parameters and the scikit-learn version: retraining an
unchanged corpus rewrites the same file. A unit test fails when the corpus no longer matches the hash
recorded in the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hooks.planner.catalog import load_catalog  # noqa: E402
from hooks.planner.classifier import MODEL_PATH, normalise, predict_proba  # noqa: E402
from hooks.planner.extract import language  # noqa: E402

PARAMS: dict[str, Any] = {"analyzer": "char_wb", "ngram_range": [1, 3], "sublinear_tf": True, "min_df": 2,
                          "C": 10.0, "max_iter": 5000, "features": 5000, "digits": 7}


def corpus_files(catalog: dict[str, Any] | None = None) -> list[Path]:
    """One file per family of the catalog, in the catalog's order."""
    return [HERE / f"{family}.yaml" for family in (catalog or load_catalog())]


def corpus_sha256(files: list[Path] | None = None) -> str:
    digest = hashlib.sha256()
    for path in files or corpus_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_corpus(files: list[Path] | None = None) -> tuple[list[str], list[str]]:
    """(texts, families), every file's texts labelled with its `family`."""
    texts, labels = [], []
    for path in files or corpus_files():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        texts += data["texts"]
        labels += [data["family"]] * len(data["texts"])
    return texts, labels


def _pipeline(params: dict[str, Any], vocabulary: list[str] | None = None) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=params["analyzer"], ngram_range=tuple(params["ngram_range"]),
                                 preprocessor=normalise, sublinear_tf=params["sublinear_tf"],
                                 min_df=params["min_df"] if vocabulary is None else 1, vocabulary=vocabulary)
    return vectorizer, LogisticRegression(C=params["C"], max_iter=params["max_iter"])


def fit(texts: list[str], labels: list[str], params: dict[str, Any] = PARAMS) -> tuple[Any, Any, int]:
    """(vectorizer, logistic regression, vocabulary size before pruning), both fitted on the pruned vocabulary."""
    import numpy as np

    vectorizer, model = _pipeline(params)
    model.fit(vectorizer.fit_transform(texts), labels)
    vocabulary = vectorizer.get_feature_names_out()
    strength = np.abs(model.coef_).max(axis=0)
    keep = np.lexsort((vocabulary, -strength))[: params["features"]]  # strongest first, ties by n-gram
    vectorizer, model = _pipeline(params, sorted(vocabulary[keep].tolist()))
    model.fit(vectorizer.fit_transform(texts), labels)
    return vectorizer, model, len(vocabulary)


def export(vectorizer: Any, model: Any, texts: list[str], labels: list[str], before: int,
           params: dict[str, Any] = PARAMS) -> dict[str, Any]:
    import sklearn

    def r(x: float) -> float:
        return float(f"{x:.{params['digits']}g}")

    files = corpus_files()
    per_family: dict[str, dict[str, int]] = {}
    for text, label in zip(texts, labels, strict=True):
        counts = per_family.setdefault(label, {"en": 0, "zh": 0})
        counts[language(text)] += 1
    names = vectorizer.get_feature_names_out()
    table = {str(g): [r(vectorizer.idf_[j]), *(r(model.coef_[k, j]) for k in range(len(model.classes_)))]
             for j, g in enumerate(names)}
    exported = {
        "format": 1,
        "classes": [str(c) for c in model.classes_],
        "params": params,
        "corpus": {"sha256": corpus_sha256(files), "files": [f.relative_to(ROOT).as_posix() for f in files],
                   "texts": len(texts), "per_family": per_family},
        "training": {"scikit_learn": sklearn.__version__, "vocabulary_before_pruning": before,
                     "training_accuracy": round(float(model.score(vectorizer.transform(texts), labels)), 4)},
        "intercept": [r(b) for b in model.intercept_],
        "features": table,
    }
    sk = model.predict_proba(vectorizer.transform(texts))
    worst = max(abs(sk[i, k] - p) for i, t in enumerate(texts)
                for k, p in enumerate(predict_proba(t, exported).values()))
    exported["training"]["rounding_max_abs_probability_change"] = float(f"{worst:.2g}")
    return exported


def dumps(model: dict[str, Any]) -> str:
    """JSON with one n-gram per line, so that a retrained model diffs line by line."""
    head = {k: v for k, v in model.items() if k != "features"}
    lines = ["{"] + [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    rows = [f"{json.dumps(g, ensure_ascii=False)}:{json.dumps(w, separators=(',', ':'))}" for g, w in model["features"].items()]
    return "\n".join(lines + ['"features": {', ",\n".join(rows), "}", "}"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    texts, labels = load_corpus()
    vectorizer, model, before = fit(texts, labels)
    trained = time.perf_counter() - start
    exported = export(vectorizer, model, texts, labels, before)
    args.out.write_text(dumps(exported), encoding="utf-8")
    print(f"{args.out}: {len(texts)} texts, {before} n-grams -> {len(exported['features'])}, "
          f"{args.out.stat().st_size / 1024:.0f} KiB, trained in {trained:.1f} s "
          f"(scikit-learn {exported['training']['scikit_learn']}), corpus sha256 {exported['corpus']['sha256'][:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
