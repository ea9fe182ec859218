"""The offline planner: a deterministic reading of a requirement (English or Chinese), no network.

    analysis = analyse("对PCB缺陷照片分类，单张推理不超过50毫秒，T4显卡", load_catalog())
    analysis["family"]   # {'value': 'image_classification', 'score': 0.9, 'evidence': ['照片', '缺陷', '分类']}

Family: the classifier decides (hooks/planner/classifier.py: character and word n-grams, logistic regression,
trained on the bilingual corpus in hooks/planner/corpus/, inferred in pure Python). The cue words stay as
evidence: count the catalog's cue words of each family (catalog.yml `keywords`); generic cues
("classify", "分类", "estimate", "回归") add half a hit to the families they fit; a family with strictly
the most hits is the cues' family. The classifier's probability and whether the cues agree give the
score (hooks/planner/scoring.py, rules F1-F4): when they disagree the score is 0.5, below the
clarification threshold, so the researcher is asked.

Model (`choose_model`): read from the catalog's fields (`kind`, `language`), never from model names.
The catalog lists each family's hand-written toys first (`kind: baseline`), then `published` ones
trained from scratch, then `pretrained` ones with hub weights. Data size counts as large from 50,000
samples; a latency bound is tight under 10 ms.

- M1, pretrained: the family has `kind: pretrained` candidates, a GPU is named or mentioned (and
  CPU-only is not stated: the accelerator rule below says 'gpu'), and no latency bound is tight.
  Fine-tuning pretrained weights beats training a toy from scratch on the few thousand samples a
  research project starts with, and a GPU makes it affordable. Which one: when the pretrained
  candidates carry a `language` (text), the data's language picks (extract.text_language: 'zh', 'en',
  or 'multi' for mixed Chinese and English; the `multi` encoder when no candidate has the language);
  among those left, the first in catalog order (the smallest: resnet18) for small or unstated data,
  the last (the largest: convnext_tiny) for 50,000 samples or more.
- M2, toys for a CPU or a tight bound: CPU-only stated, or a latency bound under 10 ms. The first
  `baseline` model: the existing size rule below never picks the larger toy under these limits.
- M3, toys by default: a pretrained family, no GPU named or mentioned and CPU-only not stated. The
  accelerator then defaults to the CPU, where fine-tuning a pretrained backbone is slow, so the
  existing size rule among the baselines decides.
- M4, no pretrained candidates (tables, time series): the existing size rule among the baselines.
  The published models (ft_transformer, patchtst) stay candidates in tech.md: switch with model=<key>.

The existing size rule over the first two baselines: the larger one when the requirement states at
least 50,000 samples, does not restrict training to a CPU and does not ask for a latency under 10 ms;
otherwise the small one (fast to iterate, cheap to serve).

Accelerator: 'gpu' when a GPU is named or mentioned and CPU-only is not stated; else 'cpu'.
"""

from __future__ import annotations

import re
from typing import Any

from . import classifier, scoring
from .extract import CJK, Extraction, extract, language, text_language

GENERIC_CUES = {
    # cue -> families it points to (half a hit each)
    r"classif|categori[sz]e|whether|detect|recogni[sz]e|分类|识别|判断|是否|检测|类别": (
        "image_classification", "text_classification", "tabular_classification"),
    r"regress|estimate|how much|predict (?:the )?(?:value|amount|price)|回归|估计|估算|多少": ("tabular_regression",),
    r"predict (?:the )?next|forecast|预测(?:未来|下)": ("time_series_forecasting",),
}
GPU_MENTIONED = r"gpu|cuda|显卡|显存|算力卡"
DEPLOYMENT = r"docker|kubernetes|k8s|cluster|server|edge|mobile|phone|raspberry|jetson|on-prem|cloud|api|服务器|集群|边缘|手机|容器|部署|云"
DATA_KIND = (r"dataset|data set|labell?ed|annotated|images?|photos?|scans?|texts?|reviews?|rows?|records?|csv|table|"
             r"series|readings|数据|图片|照片|文本|评论|表格|记录|样本|序列|标注")
LARGE_DATA = 50_000
TIGHT_LATENCY_MS = 10.0


def _cue_hits(text: str, words: list[str]) -> list[str]:
    found = []
    for word in words:
        if CJK.search(word):
            if word in text:
                found.append(word)
        elif re.search(r"(?<![a-z])" + re.escape(word.lower()) + r"(?![a-z])", text.lower()):
            found.append(word)
    return found


def cue_evidence(text: str, catalog: dict[str, Any]) -> tuple[dict[str, float], dict[str, list[str]]]:
    """(hits, words) per family: one hit per cue word of the catalog, half a hit per generic cue."""
    hits: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    for family, spec in catalog.items():
        words = _cue_hits(text, spec["keywords"]["en"] + spec["keywords"]["zh"])
        hits[family], evidence[family] = float(len(words)), words
    for pattern, families in GENERIC_CUES.items():
        m = re.search(pattern, text, re.IGNORECASE)
        if m:
            for family in families:
                hits[family] += 0.5
                evidence[family].append(m.group(0))
    return hits, evidence


def cue_family(hits: dict[str, float]) -> str | None:
    """The family with strictly the most cue hits; None without any hit or on a tie."""
    ranked = sorted(hits.values(), reverse=True)
    if not ranked or ranked[0] == 0 or (len(ranked) > 1 and ranked[0] == ranked[1]):
        return None
    return max(hits, key=lambda f: hits[f])


def infer_family(text: str, catalog: dict[str, Any]) -> dict[str, Any]:
    """The classifier's family, scored with the cue words' agreement.

    {'value', 'score', 'rule', 'probability', 'probabilities', 'cue_family', 'evidence' (the cue words
    of the chosen family), 'hits', 'cue_words'}.
    """
    hits, evidence = cue_evidence(text, catalog)
    known = classifier.predict_proba(text)
    probabilities = {family: known.get(family, 0.0) for family in catalog}
    order = list(catalog)
    best = max(order, key=lambda f: (probabilities[f], -order.index(f)))
    cues = cue_family(hits)
    code = scoring.family_rule(probabilities[best], best, cues)
    return {"value": best, **scoring.rule(code), "probability": probabilities[best], "probabilities": probabilities,
            "cue_family": cues, "evidence": evidence[best], "hits": hits, "cue_words": evidence}


def family_explanation(inferred: dict[str, Any], catalog: dict[str, Any]) -> str:
    """'classifier 0.82; cue words agree: price, house' and the like, for the family item's statement."""
    head = f"classifier {inferred['probability']:.2f}"
    cues = inferred["cue_family"]
    if cues is None:
        return f"{head}; no cue word decides"
    words = ", ".join(inferred["cue_words"][cues])
    if cues == inferred["value"]:
        return f"{head}; cue words agree: {words}"
    return f"{head}; the cue words point to {catalog[cues]['label'].lower()}: {words}"


def _models_of(spec: dict[str, Any], kind: str) -> list[str]:
    return [key for key, model in spec["models"].items() if model.get("kind", "baseline") == kind]


def _size_rule(baselines: list[str], found: Extraction) -> tuple[str, str]:
    """The first two baselines by data size, CPU-only and a tight latency bound (the module docstring)."""
    small, large = baselines[:2]
    size = found.dataset_size.value if found.dataset_size else None
    latency = found.latency_ms.value if found.latency_ms else None
    if size is not None and size >= LARGE_DATA and not found.cpu_only and (latency is None or latency >= TIGHT_LATENCY_MS):
        return large, (f"{size:,.0f} samples are enough to use the larger baseline's capacity, and no CPU-only or "
                       f"sub-{TIGHT_LATENCY_MS:.0f} ms constraint rules it out")
    reasons = []
    if size is None or size < LARGE_DATA:
        reasons.append("the data is small or unstated")
    if found.cpu_only:
        reasons.append("training is restricted to a CPU")
    if latency is not None and latency < TIGHT_LATENCY_MS:
        reasons.append(f"the latency bound is {latency:g} ms")
    return small, "the smaller baseline is the better first choice: " + "; ".join(reasons)


def _pretrained_rule(spec: dict[str, Any], pretrained: list[str], text: str, found: Extraction) -> tuple[str, str]:
    """M1: the data's language (when the candidates carry one), then the data size (module docstring)."""
    pool, notes = pretrained, []
    if any(spec["models"][key].get("language") for key in pretrained):
        lang = text_language(text)
        same = [key for key in pretrained if spec["models"][key].get("language") == lang]
        pool = same or [key for key in pretrained if spec["models"][key].get("language") == "multi"] or pretrained
        names = {"zh": "Chinese", "en": "English", "multi": "mixed Chinese and English"}
        notes.append(f"the texts read as {names[lang]}, so the encoder for language {lang}" if same else
                     f"no encoder for language {lang}, so the multilingual one")
    if len(pool) > 1:
        size = found.dataset_size.value if found.dataset_size else None
        if size is not None and size >= LARGE_DATA:
            key = pool[-1]
            notes.append(f"{size:,.0f} samples (at least {LARGE_DATA:,}) pay for the last (largest) pretrained candidate")
        else:
            key = pool[0]
            notes.append(f"the data is small or unstated (under {LARGE_DATA:,} samples), "
                         "so the first (smallest) pretrained candidate")
    else:
        key = pool[0]
    gpu = found.gpu or "a GPU"
    return key, (f"rule M1: {gpu} is available and no latency bound is under {TIGHT_LATENCY_MS:.0f} ms, so pretrained "
                 "weights are fine-tuned rather than a baseline trained from scratch; " + "; ".join(notes))


def choose_model(family: str, text: str, catalog: dict[str, Any], found: Extraction | None = None) -> tuple[str, str]:
    """(model key, one-sentence rationale naming the rule that fired) by the rules in the module docstring."""
    found = found or extract(text)
    spec = catalog[family]
    pretrained, baselines = _models_of(spec, "pretrained"), _models_of(spec, "baseline")
    latency = found.latency_ms.value if found.latency_ms else None
    tight = latency is not None and latency < TIGHT_LATENCY_MS
    if not pretrained:
        key, why = _size_rule(baselines, found)
        return key, f"rule M4: {spec['label'].lower()} has no pretrained candidates; {why}"
    if infer_accelerator(text, found) == "gpu" and not tight:
        return _pretrained_rule(spec, pretrained, text, found)
    if found.cpu_only or tight:
        limits = (["training is restricted to a CPU"] if found.cpu_only else []) + (
            [f"the latency bound is {latency:g} ms (under {TIGHT_LATENCY_MS:.0f} ms)"] if tight else [])
        return baselines[0], (f"rule M2: {' and '.join(limits)}, so the smaller hand-written baseline rather than a "
                              "pretrained model (fast on a CPU, cheap to serve)")
    key, why = _size_rule(baselines, found)
    return key, ("rule M3: no GPU is named or mentioned, so training defaults to the CPU, where a hand-written baseline "
                 f"iterates faster than fine-tuning a pretrained model; {why}")


def infer_accelerator(text: str, found: Extraction) -> str:
    mentioned = found.gpu is not None or re.search(GPU_MENTIONED, text, re.IGNORECASE) is not None
    return "gpu" if mentioned and not found.cpu_only else "cpu"


def infer(requirement: str, what: str, family: str | None = None, catalog: dict[str, Any] | None = None) -> str:
    """The offline planner's default for one copier question: 'task_family', 'model' or 'accelerator'."""
    from .catalog import load_catalog

    catalog = catalog or load_catalog()
    text = requirement or ""
    if what == "task_family":
        return infer_family(text, catalog)["value"]
    found = extract(text)
    if what == "model":
        return choose_model(family or infer_family(text, catalog)["value"], text, catalog, found)[0]
    if what == "accelerator":
        return infer_accelerator(text, found)
    raise ValueError(f"infer(): unknown question {what!r}; expected task_family, model or accelerator")


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?。！？；;])\s*|\n+", text) if p.strip()]
    return parts or [text.strip()]


def _finding(found: Extraction, name: str) -> dict[str, Any] | None:
    value = getattr(found, name)
    return value.to_dict() if value is not None else None


def sla_of(found: Extraction) -> dict[str, Any]:
    return {
        "latency_ms": found.latency_ms.value if found.latency_ms else None,
        "throughput_per_s": found.throughput_per_s.value if found.throughput_per_s else None,
        "accuracy_pct": found.accuracy_pct.value if found.accuracy_pct else None,
        "f1_pct": found.f1_pct.value if found.f1_pct else None,
        "error_metric": {"name": found.error_metric.unit, "value": found.error_metric.value} if found.error_metric else None,
        "budget": {"amount": found.budget.value, "unit": found.budget.unit} if found.budget else None,
        "deadline_days": found.deadline_days.value if found.deadline_days else None,
    }


def reading(text: str, catalog: dict[str, Any]) -> dict[str, Any]:
    """Family plus every extracted quantity, flat (what the planner tables in tests/ and benchmarks/ grade)."""
    found = extract(text)
    return {"family": infer_family(text, catalog)["value"], **sla_of(found), "gpu": found.gpu,
            "gpu_memory_gb": found.gpu_memory_gb.value if found.gpu_memory_gb else None, "cpu_only": found.cpu_only,
            "dataset_size": found.dataset_size.value if found.dataset_size else None}


def _quality(found: Extraction, task: str) -> tuple[str, dict[str, Any] | None]:
    if task == "regression":
        if found.error_metric:
            return f"{found.error_metric.unit} <= {found.error_metric.value:g} on held-out data", _finding(found, "error_metric")
        return "held-out error metric (MAE, RMSE or MAPE) target", None
    for name, label in (("accuracy_pct", "accuracy"), ("f1_pct", "F1")):
        finding = _finding(found, name)
        if finding:
            return f"{label} >= {finding['value']:g}% on held-out data", finding
    return "held-out accuracy or F1 target", None


def analyse(requirement: str, catalog: dict[str, Any], family: str | None = None) -> dict[str, Any]:
    """The requirements analysis (schema: requirements.schema.json#/$defs/analysis).

    `family` is the answered task family when copier already asked; the inferred one is kept in
    the family item's evidence so a disagreement is visible.
    """
    from .clarify import clarification_for

    text = requirement.strip()
    lang = language(text)  # clarification questions are asked in the requirement's language
    found = extract(text)
    inferred = infer_family(text, catalog)
    family = family or inferred["value"]
    spec = catalog[family]
    words, cjk = len(re.findall(r"[A-Za-z]+", text)), len(CJK.findall(text))
    items: list[dict[str, Any]] = []

    def add(kind: str, name: str, statement: str, code: str, evidence: str | None) -> None:
        item = {"id": f"R{len(items) + 1}", "kind": kind, "name": name, "statement": statement,
                **scoring.rule(code), "evidence": evidence, "clarification": None}
        items.append(item)

    add("problem", "problem statement", sentences(text)[0], scoring.problem_rule(inferred["score"], words, cjk), text[:200])
    family_note = "" if family == inferred["value"] else f"; the planner read {inferred['value']}"
    add("goal", "task family",
        f"build a model for {spec['label'].lower()} ({family_explanation(inferred, catalog)}{family_note})",
        inferred["rule"].split(":")[0], ", ".join(inferred["evidence"]) or None)
    wished = set(found.qualitative)
    sla_items = [
        ("latency", "latency_ms", "inference latency <= {v:g} ms per request", "inference latency per request", "latency"),
        ("throughput", "throughput_per_s", "sustain >= {v:g} predictions/s", "sustained predictions per second", "throughput"),
    ]
    for name, attr, fmt, missing, wish in sla_items:
        finding = _finding(found, attr)
        add("sla", name, fmt.format(v=finding["value"]) if finding else f"{missing}: not stated",
            scoring.sla_rule(finding, wish in wished), finding["evidence"] if finding else None)
    statement, finding = _quality(found, spec["task"])
    add("sla", "quality", statement if finding else f"{statement}: not stated",
        scoring.sla_rule(finding, "accuracy" in wished), finding["evidence"] if finding else None)
    for name, attr, fmt in (("budget", "budget", "budget: {v:g} {u}"), ("deadline", "deadline_days", "deliver within {v:g} days")):
        finding = _finding(found, attr)
        add("sla", name, fmt.format(v=finding["value"], u=finding["unit"]) if finding else f"{name}: not stated",
            scoring.sla_rule(finding, name in wished), finding["evidence"] if finding else None)
    gpu_mentioned = re.search(GPU_MENTIONED, text, re.IGNORECASE) is not None
    hw_code = scoring.hardware_rule(found.gpu, found.cpu_only, gpu_mentioned)
    memory = f" ({found.gpu_memory_gb.value:g} GB)" if found.gpu_memory_gb else ""
    hw = (f"GPU: {found.gpu}{memory}" if found.gpu else "CPU only" if found.cpu_only
          else "a GPU (model not named)" if gpu_mentioned else "hardware: not stated")
    add("constraint", "hardware", hw, hw_code, found.gpu or ("CPU" if found.cpu_only else None))
    kind_stated = re.search(DATA_KIND, text, re.IGNORECASE) is not None
    size = found.dataset_size
    add("data", "data", f"about {size.value:,.0f} labelled samples" if size else "dataset size and source: not stated",
        scoring.data_rule(size is not None, kind_stated), size.evidence if size else None)
    add("compatibility", "software", "Python, torch and Lightning versions pinned by the template (front matter: compatibility)",
        "C1", None)
    deploy = re.search(DEPLOYMENT, text, re.IGNORECASE)
    add("compatibility", "deployment", f"deployment target: {deploy.group(0)}" if deploy else "deployment target: not stated",
        "C2" if deploy else "C3", deploy.group(0) if deploy else None)

    questions = 0
    for item in items:
        if scoring.needs_clarification(item["score"]):
            questions += 1
            item["clarification"] = clarification_for(item["name"], f"Q{questions}", lang, spec)
    chosen = spec["models"][choose_model(family, text, catalog, found)[0]]
    what = f"fine-tune {chosen['label']}" if chosen.get("kind") == "pretrained" else f"train a {chosen['label']} baseline"
    goals = [f"{what} on the mini data, then on {spec['full']['name']}"]
    goals += [item["statement"] for item in items if item["kind"] == "sla" and not item["statement"].endswith("not stated")]
    return {
        "family": {"value": family, "score": inferred["score"], "evidence": inferred["evidence"]},
        "problem_statements": sentences(text)[:5],
        "goals": goals,
        "sla": sla_of(found),
        "constraints": {"gpu": found.gpu, "gpu_memory_gb": found.gpu_memory_gb.value if found.gpu_memory_gb else None,
                        "cpu_only": found.cpu_only, "dataset_size": found.dataset_size.value if found.dataset_size else None},
        "items": items,
    }
