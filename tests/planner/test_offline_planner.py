"""The offline planner: extraction table (EN/ZH), scoring rules, clarifications, schema errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hooks.planner import clarify, scoring
from hooks.planner.extract import extract, language, text_language, zh_number
from hooks.planner.offline import analyse, choose_model, infer, infer_family, reading
from validators.schema import schema_errors

from ..helpers import CATALOG, TEMPLATE

CORPUS = yaml.safe_load((Path(__file__).parents[1] / "data" / "planner_corpus.yaml").read_text(encoding="utf-8"))
FIELDS = ["family", "latency_ms", "throughput_per_s", "accuracy_pct", "f1_pct", "error_metric", "budget",
          "deadline_days", "gpu", "gpu_memory_gb", "cpu_only", "dataset_size"]
DEFAULT_REQUIREMENT = ("Classify handwritten digits from small grayscale scans. Inference must stay under 20 ms per "
                       "image on a CPU and accuracy should exceed 95%.")


def test_table_has_40_texts_half_chinese():
    assert len(CORPUS) >= 40
    assert sum(language(c["text"]) == "zh" for c in CORPUS) >= len(CORPUS) / 2
    assert {c["family"] for c in CORPUS} == set(CATALOG)


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_family_and_every_number_are_read_exactly(case):
    """Every field exact, except a case's `known_miss` fields, which must still be wrong (remove them once fixed)."""
    expected = {f: case["expect"].get(f, False if f == "cpu_only" else None) for f in FIELDS}
    expected["family"] = case["family"]
    got = reading(case["text"], CATALOG)
    missed = case.get("known_miss", [])
    assert {f: got[f] for f in FIELDS if f not in missed} == {f: expected[f] for f in FIELDS if f not in missed}
    assert [f for f in missed if got[f] == expected[f]] == [], "fixed: remove these fields from known_miss"


@pytest.mark.parametrize(("text", "latency"), [("respond in 0.2 s per request", 200.0), ("推理延迟1.5秒以内", 1500.0),
                                               ("under 50ms", 50.0), ("process 2 s of audio per second", None)])
def test_latency_units_convert_to_ms(text, latency):
    found = extract(text).latency_ms
    assert (found.value if found else None) == latency


@pytest.mark.parametrize("text", ["每秒处理300张图片", "300 images/s", "300 requests per second"])
def test_throughput_is_not_mistaken_for_data_or_latency(text):
    found = extract(text)
    assert (found.throughput_per_s.value, found.dataset_size, found.latency_ms) == (300.0, None, None)


@pytest.mark.parametrize(("text", "size", "evidence"), [
    ("We need a classifier for ~12k dermoscopy images across 7 lesion types.", 12000.0, "12k dermoscopy images"),
    ("40 intent classes, 25k annotated utterances.", 25000.0, "25k annotated utterances"),
    ("Predict house sale prices from ~45k listings.", 45000.0, "45k listings"),
    ("using about 1.2 million daily sales rows (4 years of history)", 1_200_000.0, "1.2 million daily sales rows"),
    ("共两百个类别，约两万张图片", 20000.0, "两万张"),
    ("三千五百条评论", 3500.0, "三千五百条"),
    ("帮我们搞个商品图片分类，类别大概两百个左右。机器是一张4090，24G显存。", None, None),
    ("预测未来30天的订单量，V100显卡一张。", None, None),
    ("an image model for 200 classes", None, None),
    ("under 20 ms per image", None, None),
    ("3 months of data, 10k parameters, $3k credits", None, None),
    # a thousand or more of any plural noun, with or without adjectives; never a year, a rate or a unit
    ("A museum is digitising 40,000 coins and wants each photo tagged", 40000.0, "40,000 coins"),
    ("5,000 labelled questions, one T4.", 5000.0, "5,000 labelled questions"),
    ("we have 1,800 stores.", 1800.0, "1,800 stores"),
    ("About 35,000 photographs are available.", 35000.0, "35,000 photographs"),
    ("Only 300 test specimens.", 300.0, "300 test specimens"),
    ("Since 2019 stores have asked for it; 10,000 kilometres of road.", None, None),
    ("We expect 5000 QPS at peak.", None, None),
    ("MAE under 50 cases; RMSE under 1,200 units.", None, None),
    ("Classify the land-cover class from Sentinel-2 image tiles.", None, None),
    # Chinese measure words; "一笔", "一张" is an article, not one sample
    ("样本5万户。", 50000.0, "5万户"), ("有1200例样本", 1200.0, "1200例"), ("数据100万单。", 1_000_000.0, "100万单"),
    ("样本2500个，MAE小于5摄氏度。", 2500.0, "样本2500个"), ("历史数据约8,000个时间点。", 8000.0, "8,000个时间点"),
    ("判断一笔跨境汇款是否可疑", None, None), ("拍一张照片就能识别裂缝等级", None, None),
    # "N of them", "一共N块" (a tile, a piece; money after 预算); a window or a horizon under 1,000 is no data size
    ("Drone tiles of 10 crop classes, 31,500 of them.", 31500.0, "31,500 of them"),
    ("岩心薄片切成小块，一共六万块。", 60000.0, "一共六万块"), ("预算一共8万块。", None, None),
    ("From the last 96 readings at 15-minute intervals, predict the next 96.", None, None),
    ("use the past 48 time steps to predict the next 12 time steps", None, None), ("过去96个时间点预测未来24个时间点", None, None),
    ("the last 20,000 readings of the pump", 20000.0, "20,000 readings"),
])
def test_data_sizes_with_unknown_nouns_and_adjectives(text, size, evidence):
    found = extract(text).dataset_size
    assert ((found.value, found.evidence) if found else None) == ((size, evidence) if size else None)


@pytest.mark.parametrize(("numeral", "value"), [("两百", 200.0), ("三千五百", 3500.0), ("一万五千", 15000.0), ("十二", 12.0),
                                                ("三百零五", 305.0), ("两亿", 2e8)])
def test_chinese_numerals(numeral, value):
    assert zh_number(numeral) == value


@pytest.mark.parametrize(("text", "days"), [
    ("We have about 3 weeks.", 21.0), ("about 10 days to get it done", 10.0), ("within 6 weeks", 42.0),
    ("Deadline in 2 weeks", 14.0), ("两个月时间", 60.0), ("三周内上线", 21.0),
    ("forecast the next 7 days", None), ("3 months of data", None), ("we have 4 years of history", None),
    ("一个半月内完成", 45.0), ("两个半月内上线", 75.0), ("半个月内交付", 15.0), ("两周出结果", 14.0),
    ("The agronomists need it in two weeks.", 14.0), ("we need it within a month", 30.0), ("due in three weeks", 21.0),
    ("prices in the day-ahead market", None), ("two weeks ahead", None), ("the next two weeks", None),
])
def test_deadlines_with_and_without_within(text, days):
    found = extract(text).deadline_days
    assert (found.value if found else None) == days


@pytest.mark.parametrize(("text", "value"), [("at a sustained 2,000 transactions per second", 2000.0),
                                             ("25 frames per second", 25.0), ("10 GB/s of disk", None)])
def test_throughput_in_any_unit_per_second(text, value):
    found = extract(text).throughput_per_s
    assert (found.value if found else None) == value


@pytest.mark.parametrize(("text", "metric"), [("Target RMSE under 25,000 dollars.", ("RMSE", 25000.0)),
                                              ("MAE below 1,234.5", ("MAE", 1234.5)), ("MAPE under 12%", ("MAPE%", 12.0)),
                                              ("RMSE under 25, then deploy", ("RMSE", 25.0)),
                                              ("平均绝对误差控制在3 MPa以内", ("MAE", 3.0)), ("平均百分比误差不超过8%", ("MAPE%", 8.0)),
                                              ("平均绝对百分比误差低于5%", ("MAPE%", 5.0)), ("均方根误差小于0.2", ("RMSE", 0.2))])
def test_error_targets_with_thousands_separators(text, metric):
    found = extract(text).error_metric
    assert (found.unit, found.value) == metric


@pytest.mark.parametrize(("text", "budget"), [
    ("MAE within 800 dollars per acre.", None), ("MAE < 2000元", None), ("a price of 30 euros per hour", None),
    ("MAE小于10。预算5万元。", (50000.0, "CNY")),
    ("训练预算大概100个GPU小时", (100.0, "GPU-hours")), ("预算300卡时", (300.0, "GPU-hours")),
    ("about 50 GPU-hours on A100s", (50.0, "GPU-hours")), ("200 GPU hours", (200.0, "GPU-hours")), ("误差越小越好。预算50万元。", (500000.0, "CNY")),
    ("We're budgeted at €3,000 and need a first version", (3000.0, "EUR")), ("$2,000 a month of cloud", (2000.0, "USD")),
])
def test_budgets_are_neither_error_targets_nor_unit_prices(text, budget):
    found = extract(text).budget
    assert ((found.value, found.unit) if found else None) == budget


@pytest.mark.parametrize(("finding", "wished", "code"), [
    ({"bounded": True}, False, "S1"), ({"bounded": False}, False, "S2"), (None, True, "S3"), (None, False, "S4")])
def test_sla_rules(finding, wished, code):
    assert scoring.sla_rule(finding, wished) == code


@pytest.mark.parametrize(("probability", "cues", "code"), [
    (0.9, "image_classification", "F1"), (0.5, "image_classification", "F1"), (0.45, "image_classification", "F2"),
    (0.9, None, "F2"), (0.49, None, "F4"), (0.99, "text_classification", "F3"), (0.3, "text_classification", "F3")])
def test_family_rules(probability, cues, code):
    assert scoring.family_rule(probability, "image_classification", cues) == code


def test_other_rules_and_threshold():
    assert [scoring.hardware_rule("T4", False, True), scoring.hardware_rule(None, True, False),
            scoring.hardware_rule(None, False, True), scoring.hardware_rule(None, False, False)] == ["H1", "H1", "H2", "H3"]
    assert [scoring.data_rule(True, True), scoring.data_rule(True, False), scoring.data_rule(False, False)] == ["D1", "D2", "D3"]
    assert [scoring.problem_rule(0.75, 8, 0), scoring.problem_rule(0.75, 0, 15), scoring.problem_rule(0.5, 30, 0)] == ["P1", "P1", "P2"]
    assert scoring.needs_clarification(0.6) and not scoring.needs_clarification(0.61)
    assert scoring.rule("S4") == {"score": 0.3, "rule": "S4: not stated"}


def test_every_item_at_or_below_threshold_gets_a_question_and_strategy():
    analysis = analyse(DEFAULT_REQUIREMENT, CATALOG)
    scores = {i["name"]: i["score"] for i in analysis["items"]}
    assert scores == {"problem statement": 0.9, "task family": 0.9, "latency": 0.9, "throughput": 0.3, "quality": 0.9,
                      "budget": 0.3, "deadline": 0.3, "hardware": 0.9, "data": 0.7, "software": 1.0, "deployment": 0.5}
    asked = [(i["name"], i["clarification"]["id"]) for i in analysis["items"] if i["clarification"]]
    assert asked == [("throughput", "Q1"), ("budget", "Q2"), ("deadline", "Q3"), ("deployment", "Q4")]
    for item in analysis["items"]:
        if item["clarification"]:
            assert item["clarification"]["strategy"].startswith("needs human input: ")
            assert item["clarification"]["answer"] is None


def test_a_vague_chinese_requirement_is_asked_in_chinese():
    analysis = analyse("做一个模型", CATALOG)
    family = next(i for i in analysis["items"] if i["name"] == "task family")
    assert (family["score"], family["rule"]) == (0.3, "F4: classifier unsure and no deciding cue word")
    assert family["clarification"]["question"] == clarify.QUESTIONS["task family"][1]
    assert all(i["clarification"] for i in analysis["items"] if i["score"] <= 0.6)


def test_when_the_classifier_and_the_cue_words_disagree_the_family_is_asked():
    # 患者 (patient) is a tabular-classification cue word; the classifier reads a number to predict (length of stay)
    text = "根据入院时的检查指标和既往病史预测患者住院天数。"
    inferred = infer_family(text, CATALOG)
    assert (inferred["value"], inferred["cue_family"]) == ("tabular_regression", "tabular_classification")
    family = next(i for i in analyse(text, CATALOG)["items"] if i["name"] == "task family")
    assert (family["score"], family["rule"]) == (0.5, "F3: the classifier and the cue words disagree")
    assert family["statement"].startswith("build a model for tabular regression (classifier 0.")
    assert family["statement"].endswith("; the cue words point to tabular classification: 患者)")
    assert family["clarification"]["question"] == clarify.QUESTIONS["task family"][1]


def test_when_they_agree_the_statement_names_the_cue_words():
    family = next(i for i in analyse(DEFAULT_REQUIREMENT, CATALOG)["items"] if i["name"] == "task family")
    assert (family["score"], family["clarification"]) == (0.9, None)
    assert family["statement"].endswith("; cue words agree: image, scans, digits, handwritten, Classif)")
    assert family["evidence"] == "image, scans, digits, handwritten, Classif"


def test_answers_are_rescored():
    item = next(i for i in analyse(DEFAULT_REQUIREMENT, CATALOG)["items"] if i["name"] == "throughput")
    numeric = clarify.rescore(item, "about 300 requests/s at peak")
    assert (numeric["score"], numeric["rule"], numeric["clarification"]["answer"]) == (0.9, "A1: answered with a number",
                                                                                          "about 300 requests/s at peak")
    words = clarify.rescore(item, "whatever one server gives")
    assert (words["score"], words["rule"]) == (0.7, "A2: answered in words")
    assert clarify.rescore(item, "  ") is item


def test_ask_uses_questionary_and_rescores(monkeypatch):
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    items = analyse(DEFAULT_REQUIREMENT, CATALOG)["items"]
    with create_pipe_input() as pipe:
        pipe.send_text("500 QPS\r" "\r" "in 3 weeks\r" "Docker on our GPU cluster\r")
        answered = clarify.ask(items, input=pipe, output=DummyOutput())
    by_name = {i["name"]: i for i in answered}
    assert [by_name[n]["score"] for n in ("throughput", "budget", "deadline", "deployment")] == [0.9, 0.3, 0.9, 0.7]
    assert by_name["budget"]["clarification"]["answer"] is None


def test_planner_defaults_for_copier_questions():
    assert infer("对PCB缺陷照片分类，T4显卡，数据约5万张图片", "task_family") == "image_classification"
    assert infer("对PCB缺陷照片分类，T4显卡，数据约5万张图片", "model") == "convnext_tiny"  # 50k samples, a GPU
    assert infer("对PCB缺陷照片分类，T4显卡，数据约5万张图片", "accelerator") == "gpu"
    assert infer(DEFAULT_REQUIREMENT, "model", "text_classification") == "fasttext"
    assert infer(DEFAULT_REQUIREMENT, "accelerator") == "cpu"
    with pytest.raises(ValueError, match="unknown question 'color'"):
        infer("x", "color")


TWO_COPIES = """
import sys, copier
for family in ("text_classification", "tabular_classification"):
    copier.run_copy(sys.argv[1], f"{sys.argv[2]}/{family}", data={"project_name": "p", "task_family": family},
                    defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True, skip_tasks=True)
"""


def test_two_copies_in_one_interpreter_each_get_the_planner_default(tmp_path):
    """Each run_copy clones the template afresh and deletes the clone after: the second copy's planner must not
    import from the first, deleted clone (a fresh interpreter: nothing of this repository imported before)."""
    done = subprocess.run([sys.executable, "-c", TWO_COPIES, str(TEMPLATE), str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    models = [yaml.safe_load((tmp_path / f / ".copier-answers.yml").read_text())["model"]
              for f in ("text_classification", "tabular_classification")]
    assert models == ["fasttext", "mlp"]


M1 = "rule M1: {gpu} is available and no latency bound is under 10 ms, so pretrained weights are fine-tuned rather than a baseline trained from scratch; "
SMALL = "the data is small or unstated (under 50,000 samples), so the first (smallest) pretrained candidate"


@pytest.mark.parametrize(("text", "family", "model", "why"), [
    # M1: a GPU and no tight latency bound: pretrained; images by data size, text by the data's language
    ("classify PCB defect photos on a T4", "image_classification", "resnet18", M1.format(gpu="T4") + SMALL),
    ("Classify PCB defect photos into 6 defect types; 12,000 labelled images, training on a GPU.", "image_classification",
     "resnet18", M1.format(gpu="a GPU") + SMALL),
    ("对PCB缺陷照片分类，8万张图片，一张A100", "image_classification", "convnext_tiny",
     M1.format(gpu="A100") + "80,000 samples (at least 50,000) pay for the last (largest) pretrained candidate"),
    ("判断商品评论情感，用一张A100", "text_classification", "bert_chinese",
     M1.format(gpu="A100") + "the texts read as Chinese, so the encoder for language zh"),
    ("Classify the sentiment of product reviews; we fine-tune on one V100.", "text_classification", "distilbert",
     M1.format(gpu="V100") + "the texts read as English, so the encoder for language en"),
    ("判断英文客服邮件是否需要升级处理，T4显卡", "text_classification", "distilbert",
     M1.format(gpu="T4") + "the texts read as English, so the encoder for language en"),
    ("Sentiment of app reviews written in a mix of Chinese and English; one A100.", "text_classification", "mdistilbert",
     M1.format(gpu="A100") + "the texts read as mixed Chinese and English, so the encoder for language multi"),
    ("Classify 用户评论 into positive or negative, 数据是电商平台的商品评论, GPU is one A100", "text_classification",
     "mdistilbert", M1.format(gpu="A100") + "the texts read as mixed Chinese and English, so the encoder for language multi"),
    # M2: CPU-only or a latency bound under 10 ms: the small toy, whatever the data size
    ("classify PCB defect photos on a T4, under 5 ms per image", "image_classification", "small_cnn",
     "rule M2: the latency bound is 5 ms (under 10 ms), so the smaller hand-written baseline rather than a pretrained "
     "model (fast on a CPU, cheap to serve)"),
    ("Classify 80,000 PCB defect photos, CPU-only.", "image_classification", "small_cnn",
     "rule M2: training is restricted to a CPU, so the smaller hand-written baseline rather than a pretrained model "
     "(fast on a CPU, cheap to serve)"),
    ("判断商品评论情感，只能用CPU，单条推理5毫秒以内", "text_classification", "fasttext",
     "rule M2: training is restricted to a CPU and the latency bound is 5 ms (under 10 ms), so the smaller hand-written "
     "baseline rather than a pretrained model (fast on a CPU, cheap to serve)"),
    # M3: no GPU named or mentioned: the accelerator is the CPU, the toys by data size
    ("Classify product review sentiment, 200k labelled reviews.", "text_classification", "text_cnn",
     "rule M3: no GPU is named or mentioned, so training defaults to the CPU, where a hand-written baseline iterates "
     "faster than fine-tuning a pretrained model; 200,000 samples are enough to use the larger baseline's capacity, and "
     "no CPU-only or sub-10 ms constraint rules it out"),
    ("classify PCB defect photos", "image_classification", "small_cnn",
     "rule M3: no GPU is named or mentioned, so training defaults to the CPU, where a hand-written baseline iterates "
     "faster than fine-tuning a pretrained model; the smaller baseline is the better first choice: the data is small or "
     "unstated"),
    # M4: no pretrained candidates: the baselines by data size; the published models stay candidates only
    ("Predict house prices from 100k rows on an A100", "tabular_regression", "tabular_resnet",
     "rule M4: tabular regression has no pretrained candidates; 100,000 samples are enough to use the larger baseline's "
     "capacity, and no CPU-only or sub-10 ms constraint rules it out"),
    ("预测未来7天的销量，一张T4", "time_series_forecasting", "mlp_forecaster",
     "rule M4: time-series forecasting has no pretrained candidates; the smaller baseline is the better first choice: "
     "the data is small or unstated"),
])
def test_model_choice_rules(text, family, model, why):
    assert choose_model(family, text, CATALOG) == (model, why)
    assert infer(text, "model", family) == model


@pytest.mark.parametrize(("text", "lang"), [
    ("判断商品评论情感，用一张A100", "zh"), ("Classify the sentiment of product reviews.", "en"),
    ("用BERT做商品评论情感分类，accuracy要达到90%，T4显卡", "zh"),  # English terms in a Chinese requirement
    ("Classify Chinese product reviews by sentiment.", "zh"), ("判断英文邮件是否为垃圾邮件", "en"),
    ("Reviews in both Chinese and English", "multi"), ("中英混合的微博文本分类", "multi"), ("multilingual support tickets", "multi"),
    ("Classify 用户评论 into positive or negative, 数据是电商平台的商品评论", "multi"),
    ("Classify product reviews (评论) by sentiment.", "en"),
])
def test_text_language_names_or_reads_the_data_language(text, lang):
    assert text_language(text) == lang


def test_the_rules_read_the_catalog_not_model_names():
    """A pretrained family's rule follows `kind` and `language`: renamed keys are chosen all the same."""
    renamed = {"text_classification": {**CATALOG["text_classification"], "models": {
        f"x_{key}": model for key, model in CATALOG["text_classification"]["models"].items()}}}
    assert choose_model("text_classification", "判断商品评论情感，用一张A100", renamed)[0] == "x_bert_chinese"
    no_zh = {"text_classification": {**CATALOG["text_classification"], "models": {
        key: model for key, model in CATALOG["text_classification"]["models"].items() if model.get("language") != "zh"}}}
    key, why = choose_model("text_classification", "判断商品评论情感，用一张A100", no_zh)
    assert (key, why.endswith("no encoder for language zh, so the multilingual one")) == ("mdistilbert", True)


def test_goals_say_fine_tune_for_a_pretrained_choice():
    assert analyse("classify PCB defect photos on a T4", CATALOG)["goals"][0] == (
        "fine-tune ResNet-18, ImageNet weights (He et al. 2016) on the mini data, then on "
        "MNIST / Fashion-MNIST exported to PNG folders")
    assert analyse(DEFAULT_REQUIREMENT, CATALOG)["goals"][0] == (
        "train a Small CNN (2 conv blocks) baseline on the mini data, then on MNIST / Fashion-MNIST exported to PNG folders")


def requirements_front_matter(analysis):
    return {"schema_version": 1, "project": "demo", "language": "en", "requirement": "x",
            "planner": {"name": "offline", "model": None, "fallback": None}, **{k: analysis[k] for k in analysis},
            "compatibility": {"python": "3.11", "torch": "2.13.0", "lightning": "2.6.6", "deployment": None}}


def test_schema_errors_name_file_path_value_and_hint():
    doc = requirements_front_matter(analyse(DEFAULT_REQUIREMENT, CATALOG))
    assert list(schema_errors(doc, "requirements", file="requirements.md")) == []
    doc["items"][0]["score"] = 1.5
    doc["items"][3]["clarification"] = None          # throughput scored 0.3: needs one
    doc["surprise"] = True
    errors = [str(e) for e in schema_errors(doc, "requirements", file="requirements.md")]
    assert errors == [
        "requirements.md: surprise: True is invalid: expected no key 'surprise' here (allowed: schema_version, project, "
        "language, requirement, planner, family, problem_statements, goals, sla, constraints, compatibility, items) "
        "(hint: remove the key or fix its spelling: the schema is closed)",
        "requirements.md: items[0].score: 1.5 is invalid: expected at most 1 "
        "(hint: scores lie in 0..1 (the rules: docs/planning.md of the template))",
        "requirements.md: items[3].clarification: missing: expected a value of type object "
        "(hint: use the documented type)",
    ]
