"""The family classifier: the shipped model matches its corpus, pure-Python inference equals scikit-learn's,
the held-out table stays out of the corpus, and the hooks import nothing copier's interpreter lacks."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hooks.planner import classifier
from hooks.planner.corpus.train import corpus_files, corpus_sha256, load_corpus
from hooks.planner.extract import language

from ..helpers import CATALOG, TEMPLATE

MODEL = classifier.load_model()
HOLDOUT = yaml.safe_load((TEMPLATE / "benchmarks" / "planner_holdout.yaml").read_text(encoding="utf-8")) or []
DEV = yaml.safe_load((TEMPLATE / "tests" / "data" / "planner_corpus.yaml").read_text(encoding="utf-8"))
TEXTS, LABELS = load_corpus()
RETRAIN = "the classifier is out of date with its corpus: run `nox -s classifier` and commit hooks/planner/family_model.json"


def test_the_shipped_model_was_trained_on_this_corpus():
    assert MODEL["corpus"]["sha256"] == corpus_sha256(), RETRAIN
    assert MODEL["corpus"]["files"] == [f.relative_to(TEMPLATE).as_posix() for f in corpus_files()], RETRAIN
    assert sorted(MODEL["classes"]) == sorted(CATALOG), RETRAIN


def test_the_corpus_is_several_hundred_texts_per_family_about_half_chinese():
    for family in CATALOG:
        texts = [t for t, label in zip(TEXTS, LABELS, strict=True) if label == family]
        zh = sum(language(t) == "zh" for t in texts)
        assert len(texts) >= 300 and 0.4 <= zh / len(texts) <= 0.6, family
    assert len(set(TEXTS)) == len(TEXTS)


def test_the_model_file_stays_small():
    assert classifier.MODEL_PATH.stat().st_size < 1_000_000


def sample() -> list[str]:
    return [c["text"] for c in DEV] + TEXTS[::40] + ["", "?!", "   ", "GPU", "图像", "Ünïcödé ½ ⅓ ٣", "a" * 2000]


def test_pure_python_inference_equals_scikit_learn():
    """scikit-learn's FeatureUnion and LogisticRegression, given the shipped file's numbers, against classifier.py."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    from hooks.planner.corpus.train import vectorizer

    tables = MODEL["features"]
    union = vectorizer(MODEL["params"], {block: list(table) for block, table in tables.items()})
    for block, vec in union.transformer_list:
        vec.idf_ = np.array([w[0] for w in tables[block].values()])
    rows = [w for table in tables.values() for w in table.values()]
    model = LogisticRegression()
    model.classes_ = np.array(MODEL["classes"])
    model.coef_ = np.array([[w[k + 1] for w in rows] for k in range(len(MODEL["classes"]))])
    model.intercept_ = np.array(MODEL["intercept"])
    model.n_features_in_ = len(rows)
    texts = sample()
    expected = model.predict_proba(union.transform(texts))
    for text, row in zip(texts, expected, strict=True):
        got = classifier.predict_proba(text)
        assert list(got) == MODEL["classes"]
        assert max(abs(got[c] - p) for c, p in zip(MODEL["classes"], row, strict=True)) < 1e-6, text


@pytest.mark.parametrize("spec", [
    {"analyzer": "char_wb", "ngram_range": [1, 3]}, {"analyzer": "char_wb", "ngram_range": [2, 5]},
    {"analyzer": "word", "ngram_range": [1, 2], "token_pattern": r"(?u)\b\w\w+\b", "stop_words": []},
    {"analyzer": "word", "ngram_range": [1, 3], "token_pattern": r"(?u)\b[a-z][a-z]+\b", "stop_words": ["the", "of"]},
    MODEL["params"]["blocks"]["char"], MODEL["params"]["blocks"]["word"]])
def test_ngrams_match_scikit_learn(spec):
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer

    extra = {"token_pattern": spec["token_pattern"], "stop_words": spec["stop_words"]} if spec["analyzer"] == "word" else {}
    theirs = TfidfVectorizer(analyzer=spec["analyzer"], ngram_range=tuple(spec["ngram_range"]),
                             preprocessor=classifier.normalise, **extra).build_analyzer()
    for text in sample():
        assert sorted(classifier.analyse(spec, classifier.normalise(text))) == sorted(theirs(text))


def normalised(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def grams(text: str, n: int = 5) -> set[str]:
    text = normalised(text)
    return {text[i: i + n] for i in range(max(1, len(text) - n + 1))}


def test_no_held_out_text_is_in_the_training_corpus():
    exact, norm = set(TEXTS), {normalised(t) for t in TEXTS}
    corpus = [grams(t) for t in TEXTS]
    for case in HOLDOUT:
        text = case["text"]
        assert text not in exact and normalised(text) not in norm, case["id"]
        mine = grams(text)
        for other, theirs in zip(TEXTS, corpus, strict=True):
            if min(len(mine), len(theirs)) > 0.8 * max(len(mine), len(theirs)):  # else Jaccard <= 0.8 anyway
                jaccard = len(mine & theirs) / len(mine | theirs)
                assert jaccard <= 0.8, f"{case['id']} is a near-duplicate ({jaccard:.2f}) of the corpus text {other!r}"


def test_the_held_out_table_is_balanced_and_half_chinese():
    if not HOLDOUT:
        pytest.skip("benchmarks/planner_holdout.yaml is an empty placeholder until the fresh table is dropped in")
    assert len(HOLDOUT) >= 100 and len({c["id"] for c in HOLDOUT}) == len(HOLDOUT)
    for family in CATALOG:
        cases = [c for c in HOLDOUT if c["family"] == family]
        assert len(cases) == len(HOLDOUT) // len(CATALOG)
        assert sum(language(c["text"]) == "zh" for c in cases) == len(cases) // 2


PLANNER = sorted((TEMPLATE / "hooks" / "planner").glob("*.py"))
FIRST_PARTY = {"hooks", "validators", "__future__"}
AT_TOP = {"yaml", "jinja2"}                             # copier's own dependencies
LAZILY = {"litellm", "questionary", "prompt_toolkit"}   # inside functions only: the LLM path, the terminal


@pytest.mark.parametrize("path", PLANNER, ids=[p.name for p in PLANNER])
def test_planner_modules_import_only_what_copier_has(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = {id(node) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
              for node in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = [node.module.split(".")[0]]
        else:
            continue
        for root in roots:
            allowed = (root in sys.stdlib_module_names or root in FIRST_PARTY or root in AT_TOP
                       or (root in LAZILY and id(node) in inside))
            assert allowed, f"{path.name}:{node.lineno} imports {root}: the hooks run in copier's interpreter"


def test_the_offline_planner_runs_without_numpy_or_scikit_learn(tmp_path):
    """`python -I -S`: no site-packages at all; only PyYAML is copied next to the repository."""
    import yaml as pyyaml

    shutil.copytree(Path(pyyaml.__file__).parent, tmp_path / "yaml")
    code = (f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(TEMPLATE)!r}]\n"
            "from hooks.planner.offline import analyse, infer\n"
            "from hooks.planner.catalog import load_catalog\n"
            "a = analyse('根据入院时的检查指标和既往病史预测患者住院天数。', load_catalog())\n"
            "print(a['family']['value'], infer('Classify iris species from sepal and petal measurements.', 'task_family'))\n"
            "for name in ('numpy', 'sklearn', 'scipy'):\n"
            "    assert name not in sys.modules, name\n"
            "    try:\n        __import__(name)\n    except ModuleNotFoundError:\n        pass\n"
            "    else:\n        raise AssertionError(name + ' is importable: the test is not isolated')\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tabular_regression", "tabular_classification"]
