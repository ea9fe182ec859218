"""tech.md's estimates, verdicts and decision (validators/resources.py, validators/generation/render.py).

Synthetic measured figures stand in for `measure_candidates`' (which needs a generated project);
the measuring helpers run on small torch models built here.
"""

from __future__ import annotations

import pytest

from hooks.planner import plan
from hooks.planner.offline import analyse, choose_model
from validators import resources
from validators.frontmatter import split
from validators.generation.render import tech_md
from validators.resources import GPU_TABLE, estimate, estimate_frozen, hardware, verdict
from validators.schema import schema_errors

from ..helpers import CATALOG

T4 = {"name": "T4", "source": "named in the requirement", **GPU_TABLE["T4"]}
RUN = {"batch_size": 128, "epochs": 10, "precision": "32-true"}


def figures(params: int, flops: int, acts: int, largest: int, latency: float, frozen: tuple[int, int] | None = None,
            shape: str = "1x3x224x224") -> dict:
    """What measure_candidates returns for one candidate."""
    out = {"params": params, "flops_per_sample": flops, "activations_per_sample": acts, "largest_activation_per_sample": largest,
           "cpu_latency_ms": latency, "input_shape": shape, **RUN}
    if frozen:
        out.update(trainable_params_frozen=frozen[0], activations_frozen=frozen[1])
    return out


# image candidates: two toys at 28x28, three pretrained backbones at 224 (the magnitudes of the real ones)
IMAGE = {
    "small_cnn": figures(19_562, 3_000_000, 20_000, 6_272, 0.2, shape="1x1x28x28"),
    "resnet": figures(170_000, 40_000_000, 150_000, 25_088, 1.1, shape="1x1x28x28"),
    "resnet18": figures(11_181_642, 3_640_000_000, 2_500_000, 802_816, 35.0, frozen=(5_130, 10)),
    "resnet50": figures(23_528_522, 8_200_000_000, 40_000_000, 802_816, 80.0, frozen=(20_490, 10)),
    "convnext_tiny": figures(27_827_818, 9_000_000_000, 50_000_000, 602_112, 95.0, frozen=(7_690, 10)),
}


def test_frozen_backbone_estimate_follows_the_documented_formula():
    f = IMAGE["resnet18"]
    got = estimate_frozen(f, T4, batch_size=64, epochs=10, samples=10_000)
    memory = (4 * 11_181_642 + 12 * 5_130 + 4 * (10 + 2 * 802_816) * 64) / 1e9 + 0.5
    hours = (3_640_000_000 + 2 * 2 * 5_130) * 10_000 * 10 / (8.1e12 * 0.3) / 3600
    assert got == {"train_memory_gb_frozen": round(memory, 3), "train_hours_frozen": round(hours, 4)}
    full = estimate(f, T4, batch_size=64, epochs=10, samples=10_000)
    assert full == {"train_memory_gb": round((16 * 11_181_642 + 4 * 2_500_000 * 64) / 1e9 + 0.5, 3),
                    "train_hours": round(3 * 3_640_000_000 * 10_000 * 10 / (8.1e12 * 0.3) / 3600, 4)}
    assert got["train_memory_gb_frozen"] < full["train_memory_gb"] and got["train_hours_frozen"] < full["train_hours"]
    bf16 = estimate_frozen(f, T4, batch_size=64, epochs=10, samples=10_000, precision="bf16-mixed")
    assert bf16["train_memory_gb_frozen"] == round((4 * 11_181_642 + 12 * 5_130 + 2 * (10 + 2 * 802_816) * 64) / 1e9 + 0.5, 3)
    assert estimate_frozen(IMAGE["resnet"], T4, batch_size=64, epochs=10, samples=10_000) == {
        "train_memory_gb_frozen": None, "train_hours_frozen": None}  # no freeze_backbone option


def test_hardware_takes_the_stated_gpu_memory():
    assert hardware("RTX 4090", False, 24.0)["memory_gb"] == 24.0
    hw = hardware(None, False, 12.0)
    assert (hw["name"], hw["memory_gb"], hw["source"]) == ("T4", 12.0, "default (no GPU named in the requirement); "
                                                          "12 GB as the requirement states")
    assert hardware(None, True)["name"] == "CPU"


@pytest.mark.parametrize(("cand", "requirement", "expected"), [
    ({"train_memory_gb": 12.0, "train_memory_gb_frozen": 3.0, "cpu_latency_ms": 40.0}, {}, ("fits", [])),
    ({"train_memory_gb": 20.123, "train_memory_gb_frozen": 3.04, "cpu_latency_ms": 40.0}, {}, ("flagged", [
        "memory: full fine-tuning needs 20.1 GB, more than the T4's 16 GB; model.freeze_backbone=true needs 3.0 GB"])),
    ({"train_memory_gb": 20.0, "train_memory_gb_frozen": 17.0, "cpu_latency_ms": 1.0}, {}, ("ruled out", [
        "memory: ruled out at this batch size: needs 20.0 GB (17.0 GB with a frozen backbone), more than the T4's 16 GB"])),
    ({"train_memory_gb": 20.0, "train_memory_gb_frozen": None, "cpu_latency_ms": 1.0}, {}, ("ruled out", [
        "memory: ruled out at this batch size: needs 20.0 GB, more than the T4's 16 GB"])),
    ({"train_memory_gb": 1.0, "cpu_latency_ms": 35.04}, {"latency_ms": 20.0}, ("flagged", [
        "latency: 35.0 ms per sample on this CPU, over the 20 ms bound"])),
    ({"train_memory_gb": 1.0, "cpu_latency_ms": 3.0, "language": "en"}, {"language": "zh"}, ("flagged", [
        "language: an encoder for en; the texts read as zh"])),
    ({"train_memory_gb": 1.0, "cpu_latency_ms": 3.0, "language": "multi"}, {"language": "zh"}, ("fits", [])),
    ({"train_memory_gb": None, "cpu_latency_ms": None, "language": "zh"}, {"latency_ms": 5.0, "language": "zh"}, ("fits", [])),
])
def test_verdict_against_memory_latency_and_language(cand, requirement, expected):
    assert verdict(cand, T4, requirement) == expected


def tech(requirement: str, family: str, measured: dict, **answers) -> dict:
    """tech.md's front matter as plan_docs builds it (offline planner), with `measured` applied."""
    analysis = analyse(requirement, CATALOG, family)
    model, why = choose_model(family, requirement, CATALOG)
    answers = {"task_family": family, "model": model, "requirement": requirement, "accelerator": "gpu", **answers}
    record = {"name": "offline", "model": None, "fallback": None}
    return plan.tech_doc(answers, analysis, record, f"The planner's choice, confirmed in copier: {why}.", measured, CATALOG)


def test_image_tech_md_compares_frozen_and_full_and_decides_by_the_requirement():
    doc = tech("Classify PCB defect photos on a T4; 12,000 labelled images; under 50 ms per image.",
               "image_classification", IMAGE)
    assert [str(e) for e in schema_errors(doc, "tech", file="tech.md")] == []
    by = {c["key"]: c for c in doc["candidates"]}
    assert doc["chosen"] == "resnet18" and doc["requirement"] == {"latency_ms": 50.0, "accelerator": "gpu", "language": None}
    assert [by[k]["kind"] for k in by] == ["baseline", "baseline", "pretrained", "pretrained", "pretrained"]
    assert by["resnet18"]["hub"] == {"repo": "microsoft/resnet-18", "revision": "main"}
    assert by["resnet18"]["params_source"] == (
        "measured: instantiated from the generated configs/model/resnet18.yaml with model.pretrained=false "
        "(the same architecture, random weights) at the mini data's sizes")
    # full fine-tuning of the larger backbones does not fit the T4's 16 GB at batch 64; frozen, they do
    assert {k: (c["verdict"], c["train_memory_gb"], c["train_memory_gb_frozen"]) for k, c in by.items()} == {
        "small_cnn": ("fits", 0.511, None), "resnet": ("fits", 0.58, None), "resnet18": ("fits", 1.959, 1.367),
        "resnet50": ("flagged", 21.356, 1.416), "convnext_tiny": ("flagged", 26.545, 1.228)}
    assert by["resnet50"]["issues"] == [
        "memory: full fine-tuning needs 21.4 GB, more than the T4's 16 GB; model.freeze_backbone=true needs 1.4 GB",
        "latency: 80.0 ms per sample on this CPU, over the 50 ms bound"]
    body = split(tech_md(doc, {"latency_ms": 50.0}))[1]
    assert "| kind | hand-written baseline | hand-written baseline | pretrained weights, fine-tuned: `microsoft/resnet-18@main` |" in body
    assert "| measured at input | 1x1x28x28 | 1x1x28x28 | 1x3x224x224 | 1x3x224x224 | 1x3x224x224 |" in body
    assert ("| training memory on T4, frozen backbone (estimate) | no backbone to freeze | no backbone to freeze | 1.367 GB "
            "| 1.416 GB | 1.228 GB |") in body
    assert "| expected performance (cited) | about 98-99% accuracy on MNIST-scale digits (LeNet-class CNNs, LeCun et al. 1998) |" in body
    decision = body.split("## Decision\n\n")[1].split("\n\n")[0].splitlines()
    assert decision == [
        "- **Data:** 12,000 samples (stated in the requirement); the planner counts 50,000 or more as large.",
        "- **Hardware:** T4 (named in the requirement), 16 GB; the accelerator answer is `gpu`. `resnet18` needs 1.959 GB "
        "with every weight trained, 1.367 GB with a frozen backbone at batch 128.",
        "- **Latency:** the requirement asks <= 50 ms; `resnet18` measured 35.000 ms per sample on this CPU, before serving "
        "overhead (stage C measures the served p95).",
        "- **`resnet18` fits** every stated limit.",
        "- `resnet50` is flagged: memory: full fine-tuning needs 21.4 GB, more than the T4's 16 GB; "
        "model.freeze_backbone=true needs 1.4 GB; latency: 80.0 ms per sample on this CPU, over the 50 ms bound.",
        "- `convnext_tiny` is flagged: memory: full fine-tuning needs 26.5 GB, more than the T4's 16 GB; "
        "model.freeze_backbone=true needs 1.2 GB; latency: 95.0 ms per sample on this CPU, over the 50 ms bound.",
    ]
    assert "The planner's choice, confirmed in copier: rule M1: T4 is available" in body
    assert "memory = 4 B x parameters + 12 B x trainable parameters + activation bytes x (head activations + 2 x" in body


def test_a_chosen_model_that_does_not_fit_says_so_and_names_those_that_do():
    doc = tech("Classify PCB defect photos, 80,000 images, one RTX 3080 with 10GB of GPU memory; under 20 ms per image.",
               "image_classification", IMAGE)
    assert (doc["chosen"], doc["hardware"]["memory_gb"]) == ("convnext_tiny", 10.0)
    chosen = next(c for c in doc["candidates"] if c["key"] == "convnext_tiny")
    assert chosen["verdict"] == "flagged"
    body = split(tech_md(doc, {"latency_ms": 20.0}))[1]
    assert ("- **The chosen model is flagged:** memory: full fine-tuning needs 26.5 GB, more than the RTX 3080's 10 GB; "
            "model.freeze_backbone=true needs 1.2 GB; latency: 95.0 ms per sample on this CPU, over the 20 ms bound. "
            "Candidates that fit: `small_cnn`, `resnet`.") in body


TEXT = {
    "fasttext": figures(10_000, 40_000, 9_000, 6_400, 0.1, shape="1x64"),
    "text_cnn": figures(55_000, 3_000_000, 60_000, 12_800, 0.4, shape="1x64"),
    "distilbert": {**figures(43_580_930, 11_000_000_000, 9_000_000, 393_216, 40.0, frozen=(592_130, 800), shape="1x128"),
                   "params_with_weights": 66_955_010},
    "bert_chinese": figures(102_269_186, 22_000_000_000, 18_000_000, 393_216, 80.0, frozen=(592_130, 800), shape="1x128"),
    "mdistilbert": figures(135_326_210, 11_000_000_000, 9_000_000, 393_216, 42.0, frozen=(592_130, 800), shape="1x128"),
}


def test_text_tech_md_checks_each_encoders_language():
    doc = tech("判断商品评论情感，用一张A100", "text_classification", TEXT)
    assert [str(e) for e in schema_errors(doc, "tech", file="tech.md")] == []
    by = {c["key"]: c for c in doc["candidates"]}
    assert doc["chosen"] == "bert_chinese" and doc["requirement"]["language"] == "zh"
    assert {k: c["verdict"] for k, c in by.items()} == {
        "fasttext": "fits", "text_cnn": "fits", "distilbert": "flagged", "bert_chinese": "fits", "mdistilbert": "fits"}
    assert by["distilbert"]["issues"] == ["language: an encoder for en; the texts read as zh"]
    # the estimates count the weights' vocabulary: 16 B x 66,955,010 + 4 B x 9M x 128 + 0.5 GB
    assert by["distilbert"]["train_memory_gb"] == round((16 * 66_955_010 + 4 * 9_000_000 * 128) / 1e9 + 0.5, 3)
    body = split(tech_md(doc, {"latency_ms": None}))[1]
    assert ("| parameters with the weights' vocabulary (the estimates use them) | as measured | as measured | 66,955,010 "
            "| as measured | as measured |") in body
    assert ("| language | the data's own vocabulary | the data's own vocabulary | English | Chinese | "
            "multilingual |") in body
    assert ("- **Language:** the texts read as Chinese; the encoders for it: `bert_chinese`, `mdistilbert` "
            "(the baselines learn the data's own vocabulary).") in body
    assert "- **Latency:** the requirement states no latency bound." in body


def test_pending_documents_validate_and_say_pending():
    doc = tech("classify PCB defect photos on a T4", "image_classification", {})
    assert [str(e) for e in schema_errors(doc, "tech", file="tech.md")] == []
    assert {c["verdict"] for c in doc["candidates"]} == {"pending"} and resources.pending(doc) == list(IMAGE)
    body = split(tech_md(doc, {}))[1]
    assert "| training memory on T4, frozen backbone (estimate) | no backbone to freeze | no backbone to freeze | pending" in body
    assert "| against the requirement | pending | pending | pending | pending | pending |" in body


def test_families_without_pretrained_models_keep_the_old_columns():
    doc = tech("Predict house prices from 100k rows on an A100", "tabular_regression", {
        "mlp": figures(5_000, 10_000, 300, 128, 0.05, shape="1x10"),
        "tabular_resnet": figures(60_000, 120_000, 3_000, 256, 0.2, shape="1x10"),
        "ft_transformer": figures(90_000, 2_000_000, 40_000, 2_048, 0.9, shape="1x10")})
    body = split(tech_md(doc, {}))[1]
    assert "frozen backbone" not in body and "| language |" not in body
    assert "| kind | hand-written baseline | hand-written baseline | published architecture, trained from scratch |" in body


# ---- the measuring helpers on small torch models ------------------------------------------------

def test_measure_model_and_frozen_count_what_autograd_keeps():
    torch = pytest.importorskip("torch")
    from torch import nn

    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model = nn.Sequential(backbone, nn.Linear(8, 5))
    sample = torch.randn(1, 3, 16, 16)
    got = resources.measure_model(model, sample)
    # leaf outputs: conv 8x16x16, relu 8x16x16, pool 8, flatten 8, linear 5
    assert {k: got[k] for k in ("params", "activations_per_sample", "largest_activation_per_sample", "input_shape")} == {
        "params": 3 * 8 * 9 + 8 + 8 * 5 + 5, "activations_per_sample": 2 * 2048 + 8 + 8 + 5,
        "largest_activation_per_sample": 2048, "input_shape": "1x3x16x16"}
    assert got["flops_per_sample"] == 2 * (8 * 16 * 16 * 3 * 9) + 2 * 8 * 5 and got["cpu_latency_ms"] > 0
    for p in backbone.parameters():
        p.requires_grad_(False)
    # the head's output (5) and the frozen features it reads (8), which its weight gradient needs
    assert resources.measure_frozen(model, sample) == {"trainable_params_frozen": 45, "activations_frozen": 8 + 5}


def test_params_with_weights_adds_the_published_vocabulary_rows():
    pytest.importorskip("torch")
    from torch import nn

    class Encoder(nn.Module):  # as hf_text.py: `arch` (the HF config dict) and the published (model_type, config) table
        published = ("distilbert", {"vocab_size": 30522, "dim": 16})

        def __init__(self, vocab: int):
            super().__init__()
            self.words, self.positions = nn.Embedding(vocab, 16), nn.Embedding(64, 16)
            self.arch = {"model_type": "distilbert", "vocab_size": vocab}

    model = Encoder(87)
    params = sum(p.numel() for p in model.parameters())
    assert resources.params_with_weights(model, params) == params + (30522 - 87) * 16
    assert resources.params_with_weights(nn.Linear(3, 2), 8) is None  # not an encoder with a published vocabulary
    figures = {"params": 1_000, "params_with_weights": 2_000_000, "activations_per_sample": 10, "flops_per_sample": 10}
    assert estimate(figures, T4, batch_size=1, epochs=1, samples=1)["train_memory_gb"] == round((16 * 2e6 + 40) / 1e9 + 0.5, 3)


def test_first_item_and_shape_of_a_text_batch():
    torch = pytest.importorskip("torch")
    batch = {"input_ids": torch.zeros(8, 128, dtype=torch.long), "attention_mask": torch.ones(8, 128, dtype=torch.long)}
    one = resources._first_item(batch)
    assert resources._shape(one) == "input_ids 1x128, attention_mask 1x128"
    assert resources._shape(resources._first_item(torch.zeros(4, 3, 224, 224))) == "1x3x224x224"
