"""The task-family classifier: character and word n-gram TF-IDF, multinomial logistic regression, in pure Python.

    from hooks.planner.classifier import predict_proba
    predict_proba("根据入院时的检查指标预测患者住院天数")   # {'tabular_regression': 0.6, ...}, the five sum to 1

The model is trained at build time with scikit-learn on the bilingual corpus in hooks/planner/corpus/
(`nox -s classifier`) and shipped as family_model.json next to this module. Two blocks of features:
character n-grams inside word boundaries (scikit-learn's `char_wb` analyzer: what reads Chinese) and word
n-grams (its `word` analyzer: what reads English); per n-gram the file holds its idf and one weight per
family, plus the intercepts. Inference needs only the standard library, because copier's interpreter
runs the hooks and has no numpy: it is the exact arithmetic of scikit-learn's FeatureUnion of two
TfidfVectorizers (sublinear tf, each block l2-normalised) followed by LogisticRegression.predict_proba
(softmax). A test checks the two agree within 1e-6 where scikit-learn is installed. Deterministic, no
network.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

MODEL_PATH = Path(__file__).resolve().parent / "family_model.json"


def normalise(text: str) -> str:
    """The preprocessor given to scikit-learn at training: lower case, every digit a 0, punctuation a space."""
    text = re.sub(r"\d", "0", text.lower())
    return re.sub(r"\s+", " ", re.sub(r"[\W_]+", " ", text)).strip()


def char_ngrams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's `char_wb` n-grams of a preprocessed text: each word padded with a space on both sides."""
    out = []
    for word in text.split():
        padded = f" {word} "
        for n in range(low, high + 1):
            offset = 0
            out.append(padded[offset: offset + n])
            while offset + n < len(padded):
                offset += 1
                out.append(padded[offset: offset + n])
            if offset == 0:  # a word shorter than n is counted once
                break
    return out


def word_ngrams(text: str, low: int, high: int, token_pattern: str = r"(?u)\b\w\w+\b",
                stop_words: frozenset[str] | list[str] = frozenset()) -> list[str]:
    """scikit-learn's `word` n-grams of a preprocessed text: the tokens, less the stop words, joined by a space."""
    stop = set(stop_words)
    tokens = [t for t in re.findall(token_pattern, text) if t not in stop]
    return [" ".join(tokens[i: i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]


def analyse(spec: dict[str, Any], text: str) -> list[str]:
    """The n-grams of one feature block (its spec in the model's params) for a preprocessed text."""
    if spec["analyzer"] == "char_wb":
        return char_ngrams(text, *spec["ngram_range"])
    return word_ngrams(text, *spec["ngram_range"], spec["token_pattern"], spec["stop_words"])


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> dict[str, Any]:
    """The shipped model (see train.py in hooks/planner/corpus/ for its fields)."""
    return json.loads(path.read_text(encoding="utf-8"))


def features(text: str, model: dict[str, Any], block: str) -> dict[str, float]:
    """One block's l2-normalised TF-IDF vector of the text over the model's vocabulary, as {n-gram: value}."""
    spec, table = model["params"]["blocks"][block], model["features"][block]
    counts: dict[str, int] = {}
    for gram in analyse(spec, normalise(text)):
        if gram in table:
            counts[gram] = counts.get(gram, 0) + 1
    values = {g: (1.0 + math.log(c)) * table[g][0] for g, c in counts.items()}  # sublinear tf times idf
    norm = math.sqrt(sum(v * v for v in values.values()))
    return {g: v / norm for g, v in values.items()} if norm else {}


def predict_proba(text: str, model: dict[str, Any] | None = None) -> dict[str, float]:
    """The probability of every family the model knows, in the model's class order."""
    model = model or load_model()
    classes = model["classes"]
    scores = list(model["intercept"])
    for block in model["params"]["blocks"]:
        table = model["features"][block]
        for gram, value in features(text, model, block).items():
            weights = table[gram]
            for k in range(len(classes)):
                scores[k] += value * weights[k + 1]
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return {family: e / total for family, e in zip(classes, exps, strict=True)}


def predict(text: str, model: dict[str, Any] | None = None) -> tuple[str, float]:
    """(the most probable family, its probability); ties go to the first family in the model's order."""
    probabilities = predict_proba(text, model)
    best = max(probabilities, key=lambda f: probabilities[f])
    return best, probabilities[best]
