"""Clarification questions: what to ask for each unclear item, and re-scoring the answers.

With a terminal, `ask` puts each question to the researcher with questionary; an answer is read
by the same extractor as the requirement and re-scored (rules A1/A2 in hooks/planner/scoring.py).
Without a terminal the questions are recorded unanswered, each with its follow-up strategy.
"""

from __future__ import annotations

from typing import Any

from . import scoring
from .extract import extract

# item name -> (English question, Chinese question, what is assumed until a human answers)
QUESTIONS: dict[str, tuple[str, str, str]] = {
    "problem statement": (
        "What does the model take as input, what must it predict, and how will the prediction be used?",
        "模型的输入是什么、需要预测什么？预测结果将如何被使用？",
        "the {label} baseline is built from the requirement as written; refine the problem statements here once answered",
    ),
    "task family": (
        "Which kind of task is this: image, text or tabular classification, tabular regression, or time-series forecasting?",
        "这属于哪类任务：图像/文本/表格分类、表格回归，还是时间序列预测？",
        "{family} is assumed (copier asked you to confirm it); `copier recopy --trust` regenerates the code for another family",
    ),
    "latency": (
        "What is the maximum acceptable inference latency per request in ms, and at which percentile (p95, p99)?",
        "单次推理可接受的最大延迟是多少毫秒？按哪个分位数（p95、p99）衡量？",
        "deployment reports p50/p95/p99 latency without a pass/fail verdict until a bound is given",
    ),
    "throughput": (
        "How many predictions per second must the service sustain at peak?",
        "服务在峰值时需要每秒处理多少次预测？",
        "deployment reports measured throughput without a pass/fail verdict until a target is given",
    ),
    "quality": (
        "Which metric decides success (accuracy, F1, MAE, ...) and what value must it reach on held-out data?",
        "用什么指标判定成功（准确率、F1、MAE 等）？在测试集上需要达到多少？",
        "the target is the chosen model's expected performance in tech.md until a metric and value are given",
    ),
    "budget": (
        "What compute budget is there for full training (GPU hours or money)?",
        "完整训练的算力预算是多少（GPU 小时或金额）？",
        "full training is planned on one GPU for the time tech.md estimates",
    ),
    "deadline": (
        "When must the first trained model be delivered?",
        "第一个训练好的模型需要在什么时候交付？",
        "no schedule is planned beyond the order of task.md",
    ),
    "hardware": (
        "Which GPU (model and memory) will training and inference run on, or is it CPU-only?",
        "训练和推理使用哪种 GPU（型号和显存）？还是只用 CPU？",
        "debug runs use the CPU and tech.md's estimates assume one T4 (16 GB)",
    ),
    "data": (
        "How much labelled data is there, in what format, and under which licence?",
        "有多少标注数据？是什么格式？使用什么许可？",
        "the catalog's full dataset ({full}) stands in; the loader expects {layout}",
    ),
    "deployment": (
        "Where will the model be served: Docker on a server, a GPU cluster, an edge device?",
        "模型将部署在哪里：服务器上的 Docker、GPU 集群，还是边缘设备？",
        "the CPU Docker image of stage C is the deployment target",
    ),
}
# which extractor field answers which item (A1 when it finds a value)
ANSWER_FIELDS = {
    "latency": "latency_ms", "throughput": "throughput_per_s", "quality": ("accuracy_pct", "f1_pct", "error_metric"),
    "budget": "budget", "deadline": "deadline_days", "hardware": ("gpu", "cpu_only"), "data": "dataset_size",
}


def clarification_for(name: str, qid: str, lang: str, family_spec: dict[str, Any]) -> dict[str, Any]:
    en, zh, strategy = QUESTIONS[name]
    strategy = strategy.format(label=family_spec["label"].lower(), family=family_spec["label"].lower(),
                               full=f"{family_spec['full']['name']}, {family_spec['full']['size']}",
                               layout=family_spec["full"]["layout"])
    return {"id": qid, "question": zh if lang == "zh" else en, "strategy": f"needs human input: {strategy}", "answer": None}


def rescore(item: dict[str, Any], answer: str) -> dict[str, Any]:
    """The item after a human answer: A1 when the extractor reads a value from it, A2 for words only."""
    answer = answer.strip()
    if not answer:
        return item
    found = extract(answer)
    fields = ANSWER_FIELDS.get(item["name"], ())
    fields = (fields,) if isinstance(fields, str) else fields
    has_value = any(getattr(found, f) for f in fields)
    updated = {**item, **scoring.rule(scoring.answer_rule(has_value))}
    updated["clarification"] = {**item["clarification"], "answer": answer}
    updated["statement"] = f"{item['statement'].removesuffix(': not stated')} (answered: {answer})"
    return updated


def ask(items: list[dict[str, Any]], **prompt_kwargs: Any) -> list[dict[str, Any]]:
    """Ask every open clarification with questionary; an empty answer leaves the item as it was.

    `prompt_kwargs` go to questionary (tests pass prompt_toolkit `input`/`output`).
    """
    import questionary

    out = []
    for item in items:
        clar = item.get("clarification")
        if clar and clar.get("answer") is None:
            answer = questionary.text(f"[{item['id']} {item['name']}] {clar['question']}",
                                      instruction="(Enter to skip)", **prompt_kwargs).unsafe_ask()
            item = rescore(item, answer or "")
        out.append(item)
    return out
