"""Resource figures for tech.md: measured on the generated model, extrapolated by documented formulas.

    figures = measure_candidates(project, "demo_project", ["small_cnn", "resnet18"])   # in the project venv
    doc = apply(tech_front_matter, figures)          # estimates and the requirement's verdict per candidate

Measured (by `measure_candidates`, inside the generated project, on its mini data). Every candidate is
instantiated exactly as the project does (its config, data module and code); a pretrained one with
`model.pretrained=false`: the same architecture from the component's config table, random weights, so
nothing under weights/ is needed. The sample is the first training batch's first item, so an image model
is measured at the size its data module feeds it (model.input_size, 224 for ImageNet weights) and a text
model at the length its tokenizer pads to; tech.md records that shape.
- parameters: `sum(p.numel())` of the instantiated model component;
- forward FLOPs per sample: `torch.utils.flop_counter.FlopCounterMode` on one sample;
- activations per sample: the elements of every leaf module's output for one sample (what
  autograd keeps for the backward pass, to first order); the largest single one is kept too;
- CPU latency: median of 30 batch-1 forward passes (after 2 warm-up passes) on the machine that measures, or of
  as many as fit in 2 s once there are at least 7 (large models at 224 px stop there, not at 30);
- frozen backbone (a config with `freeze_backbone`): built again with `model.freeze_backbone=true`, its
  trainable parameters (`requires_grad`) and, in a forward pass with autograd on, the leaf outputs that
  require grad plus the frozen features entering trainable layers (what the backward pass through the head keeps);
- parameters with the weights (text encoders only): built with pretrained=false, an encoder's word embeddings
  have the mini data's vocabulary; its checkpoint's have its tokenizer's (the component's published table),
  tens of thousands of rows more. `params_with_weights` adds them; `params` stays what was instantiated
  (the A2 gate re-counts it). The estimates use `params_with_weights` where there is one.

Estimated (by `estimate`, full training or full fine-tuning, what the default configs do), with every constant below:
- training memory (GB) = (16 B x params + 4 B x activations x batch + 0.5 GB) / 1e9 at fp32 with
  Adam: weights 4 B + gradients 4 B + two moments 8 B per parameter; 0.5 GB for the CUDA context
  and allocator slack (not on a CPU). bf16-mixed halves the activation bytes.
- training time (h) = 3 x forward FLOPs x samples x epochs / (peak FLOP/s x utilisation) / 3600.
  Backward costs about twice the forward pass (Kaplan et al. 2020, "Scaling Laws", sec. 2.1).
  Utilisation 0.3: small models rarely keep a GPU's tensor cores busier; data loading is not
  modelled, so treat the figure as a lower bound.

Estimated for a frozen backbone (by `estimate_frozen`, `model.freeze_backbone=true`), same units:
- memory = 4 B x params (every weight, fp32) + 12 B x trainable params (gradient 4 B + Adam's two
  moments 8 B, for the head only) + activation bytes x (head activations + 2 x the largest activation)
  x batch + the 0.5 GB context. The backbone's forward keeps nothing for a backward pass, but holds
  a layer's input and output at once: twice the largest leaf output.
- time = (forward FLOPs + 2 x head FLOPs) x samples x epochs / (peak x utilisation) / 3600: the
  backward pass runs through the head only (2x its forward), and a head of dense layers costs
  2 FLOPs (one multiply-add) per trainable parameter per sample.

Against the requirement (by `verdict`): a candidate is *ruled out* when its estimated training memory
exceeds the hardware's memory (the requirement's GPU and its stated memory, else the table's) in every
mode it has; *flagged* when full training does not fit but a frozen backbone does, when its measured
CPU latency exceeds the requirement's latency bound, or when a pretrained text encoder's language is
neither the data's nor multilingual.
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Dense peak throughput (TFLOP/s) and memory (GB) from the vendors' datasheets.
# tensor = FP16/BF16 tensor-core peak without sparsity; CPU: a 16-core AVX2 server, assumed.
GPU_TABLE: dict[str, dict[str, float]] = {
    "T4": {"fp32_tflops": 8.1, "tensor_tflops": 65.0, "memory_gb": 16},
    "P100": {"fp32_tflops": 9.3, "tensor_tflops": 18.7, "memory_gb": 16},
    "V100": {"fp32_tflops": 15.7, "tensor_tflops": 125.0, "memory_gb": 32},
    "A10": {"fp32_tflops": 31.2, "tensor_tflops": 125.0, "memory_gb": 24},
    "A10G": {"fp32_tflops": 31.2, "tensor_tflops": 70.0, "memory_gb": 24},
    "L4": {"fp32_tflops": 30.3, "tensor_tflops": 121.0, "memory_gb": 24},
    "A100": {"fp32_tflops": 19.5, "tensor_tflops": 312.0, "memory_gb": 80},
    "A800": {"fp32_tflops": 19.5, "tensor_tflops": 312.0, "memory_gb": 80},
    "A6000": {"fp32_tflops": 38.7, "tensor_tflops": 154.8, "memory_gb": 48},
    "L40": {"fp32_tflops": 90.5, "tensor_tflops": 181.0, "memory_gb": 48},
    "L40S": {"fp32_tflops": 91.6, "tensor_tflops": 362.0, "memory_gb": 48},
    "H100": {"fp32_tflops": 67.0, "tensor_tflops": 989.0, "memory_gb": 80},
    "H800": {"fp32_tflops": 67.0, "tensor_tflops": 989.0, "memory_gb": 80},
    "H200": {"fp32_tflops": 67.0, "tensor_tflops": 989.0, "memory_gb": 141},
    "RTX 2080 Ti": {"fp32_tflops": 13.4, "tensor_tflops": 53.8, "memory_gb": 11},
    "RTX 3080": {"fp32_tflops": 29.8, "tensor_tflops": 59.5, "memory_gb": 10},
    "RTX 3090": {"fp32_tflops": 35.6, "tensor_tflops": 71.0, "memory_gb": 24},
    "RTX 4090": {"fp32_tflops": 82.6, "tensor_tflops": 165.2, "memory_gb": 24},
    "CPU": {"fp32_tflops": 1.0, "tensor_tflops": 1.0, "memory_gb": 64},
}
DEFAULT_GPU = "T4"            # the most common inference/training card on shared clusters
BYTES_PER_PARAM = 16          # fp32 weights + gradients + Adam's two moments
WEIGHT_BYTES = 4              # fp32 weights: what a frozen parameter costs
OPTIMISER_BYTES = 12          # gradient + Adam's two moments, per trainable parameter (fp32)
CONTEXT_GB = 0.5              # CUDA context and allocator slack
TRAIN_FLOPS_FACTOR = 3        # forward + backward (about 2x forward)
BACKWARD_FACTOR = 2           # backward / forward FLOPs
HEAD_FLOPS_PER_PARAM = 2      # a dense head: one multiply-add per trainable parameter per sample
WORKING_SET = 2               # a frozen forward holds a layer's input and output: 2 x the largest activation
UTILISATION = 0.3
LATENCY_WARMUP, LATENCY_RUNS, LATENCY_MIN_RUNS, LATENCY_BUDGET_MS = 2, 30, 7, 2000.0
# What tech.md says for a figure until `nox -s setup` measures it in the project venv (copier's own
# Python has no torch); the A2 gate accepts it only before the project venv exists.
PENDING = "pending: measured by `nox -s setup`"
PENDING_SOURCE = "pending: measured by `nox -s setup` in the project venv"


def hardware(gpu: str | None, cpu_only: bool, memory_gb: float | None = None) -> dict[str, Any]:
    """The hardware the estimates are for: the requirement's GPU, CPU when it says CPU-only, else a T4.

    A GPU memory the requirement states ("24G显存", "a 16 GB GPU") replaces the table's.
    """
    if cpu_only and not gpu:
        return {"name": "CPU", "source": "requirement says CPU only", **GPU_TABLE["CPU"]}
    if gpu in GPU_TABLE:
        hw = {"name": gpu, "source": "named in the requirement", **GPU_TABLE[gpu]}
    else:
        hw = {"name": DEFAULT_GPU, "source": "default (no GPU named in the requirement)", **GPU_TABLE[DEFAULT_GPU]}
    if memory_gb:
        hw.update(memory_gb=memory_gb, source=hw["source"] + f"; {memory_gb:g} GB as the requirement states")
    return hw


def _mixed(precision: str) -> bool:
    return "mixed" in precision or precision.startswith(("16", "bf16"))


def estimate(measured: dict[str, Any], hw: dict[str, Any], *, batch_size: int, epochs: int, samples: int,
             precision: str = "32-true") -> dict[str, float | None]:
    """Training memory (GB) and time (h) for one candidate from its measured figures (every weight trained)."""
    params = measured.get("params_with_weights") or measured.get("params")
    acts, flops = measured.get("activations_per_sample"), measured.get("flops_per_sample")
    if params is None or acts is None or flops is None:
        return {"train_memory_gb": None, "train_hours": None}
    act_bytes = 2 if _mixed(precision) else 4
    peak = (hw["tensor_tflops"] if _mixed(precision) else hw["fp32_tflops"]) * 1e12
    memory = (BYTES_PER_PARAM * params + act_bytes * acts * batch_size) / 1e9 + (CONTEXT_GB if hw["name"] != "CPU" else 0)
    hours = TRAIN_FLOPS_FACTOR * flops * samples * epochs / (peak * UTILISATION) / 3600
    return {"train_memory_gb": round(memory, 3), "train_hours": round(hours, 4)}


def estimate_frozen(measured: dict[str, Any], hw: dict[str, Any], *, batch_size: int, epochs: int, samples: int,
                    precision: str = "32-true") -> dict[str, float | None]:
    """The same for a frozen backbone (only the head trains); None for a model without `freeze_backbone`."""
    trainable, params = measured.get("trainable_params_frozen"), measured.get("params_with_weights") or measured.get("params")
    if trainable is None or params is None:
        return {"train_memory_gb_frozen": None, "train_hours_frozen": None}
    act_bytes = 2 if _mixed(precision) else 4
    peak = (hw["tensor_tflops"] if _mixed(precision) else hw["fp32_tflops"]) * 1e12
    kept = measured["activations_frozen"] + WORKING_SET * measured["largest_activation_per_sample"]
    memory = ((WEIGHT_BYTES * params + OPTIMISER_BYTES * trainable + act_bytes * kept * batch_size) / 1e9
              + (CONTEXT_GB if hw["name"] != "CPU" else 0))
    flops = measured["flops_per_sample"] + BACKWARD_FACTOR * HEAD_FLOPS_PER_PARAM * trainable
    hours = flops * samples * epochs / (peak * UTILISATION) / 3600
    return {"train_memory_gb_frozen": round(memory, 3), "train_hours_frozen": round(hours, 4)}


def verdict(c: dict[str, Any], hw: dict[str, Any], requirement: dict[str, Any]) -> tuple[str, list[str]]:
    """('fits' | 'flagged' | 'ruled out', the reasons) for one candidate against the requirement (module docstring)."""
    issues, ruled_out = [], False
    full, frozen, limit = c.get("train_memory_gb"), c.get("train_memory_gb_frozen"), hw["memory_gb"]
    where = f"the {hw['name']}'s {limit:g} GB"
    if full is not None and full > limit:
        if frozen is not None and frozen <= limit:
            issues.append(f"memory: full fine-tuning needs {full:.1f} GB, more than {where}; "
                          f"model.freeze_backbone=true needs {frozen:.1f} GB")
        else:
            ruled_out = True
            also = f" ({frozen:.1f} GB with a frozen backbone)" if frozen is not None else ""
            issues.append(f"memory: ruled out at this batch size: needs {full:.1f} GB{also}, more than {where}")
    latency, measured = requirement.get("latency_ms"), c.get("cpu_latency_ms")
    if latency is not None and measured is not None and measured > latency:
        issues.append(f"latency: {measured:.1f} ms per sample on this CPU, over the {latency:g} ms bound")
    lang, own = requirement.get("language"), c.get("language")
    if lang and own and own not in (lang, "multi"):
        issues.append(f"language: an encoder for {own}; the texts read as {lang}")
    return ("ruled out" if ruled_out else "flagged" if issues else "fits"), issues


FIGURES = ("params", "params_with_weights", "flops_per_sample", "activations_per_sample", "largest_activation_per_sample", "cpu_latency_ms",
           "input_shape", "trainable_params_frozen", "activations_frozen")
ESTIMATES = ("train_memory_gb", "train_hours", "train_memory_gb_frozen", "train_hours_frozen")


def apply(doc: dict[str, Any], measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """tech.md's front matter with the measured figures, the estimates that follow from them, and each verdict.

    `measured` maps candidate keys to `measure_candidates`' figures; a candidate without any stays
    pending. The batch size, epochs and precision are the generated configs' (read while measuring):
    each candidate is estimated with its own; `assumptions` records the chosen model's.
    """
    a, hw = doc["assumptions"], doc["hardware"]
    first = measured.get(doc["chosen"]) or next(iter(measured.values()), {})
    if first:
        a.update(batch_size=first["batch_size"], epochs=first["epochs"], precision=first["precision"])
    for c in doc["candidates"]:
        figures = measured.get(c["key"])
        if not figures:
            c.update(dict.fromkeys(FIGURES + ESTIMATES), params_source=PENDING_SOURCE)
            status, c["issues"] = verdict(c, hw, doc.get("requirement", {}))
            c["verdict"] = "pending" if status == "fits" else status
            continue
        c.update({k: figures.get(k) for k in FIGURES})
        how = " with model.pretrained=false (the same architecture, random weights)" if c.get("kind") == "pretrained" else ""
        c["params_source"] = (f"measured: instantiated from the generated configs/model/{c['key']}.yaml{how} "
                              "at the mini data's sizes")
        sizes = {"batch_size": figures["batch_size"], "epochs": figures["epochs"], "samples": a["full_samples"],
                 "precision": figures["precision"]}
        c.update(estimate(figures, hw, **sizes))
        c.update(estimate_frozen(figures, hw, **sizes))
        c["verdict"], c["issues"] = verdict(c, hw, doc.get("requirement", {}))
    return doc


def pending(doc: dict[str, Any]) -> list[str]:
    """The candidates of tech.md's front matter whose figures are not measured yet."""
    return [c["key"] for c in doc["candidates"] if not str(c.get("params_source", "")).startswith("measured")]


def _first_item(batch: Any) -> Any:
    """The first sample of a batch, kept as a batch of one: a tensor, or a dict/tuple of tensors (text encodings)."""
    if isinstance(batch, dict):
        return type(batch)({k: _first_item(v) for k, v in batch.items()})
    if isinstance(batch, list | tuple):
        return type(batch)(_first_item(v) for v in batch)
    return batch[:1] if hasattr(batch, "shape") else batch


def _shape(sample: Any) -> str:
    """'1x3x224x224', or 'input_ids 1x128, attention_mask 1x128' for a dict of tensors."""
    if isinstance(sample, dict):
        return ", ".join(f"{k} {_shape(v)}" for k, v in sample.items())
    if isinstance(sample, list | tuple):
        return ", ".join(_shape(v) for v in sample)
    return "x".join(str(n) for n in sample.shape)


def _leaf_outputs(model: Any, sample: Any, keep: Any, inputs_of_trainable: bool = False) -> list[int]:
    """The element counts of every leaf module's tensor outputs that `keep(tensor)` accepts, in one forward pass.

    `inputs_of_trainable`: also the inputs of leaves with trainable parameters that no trainable layer made
    (a frozen backbone's features, which the head's weight gradients need).
    """
    import torch

    sizes: list[int] = []

    def count(module: Any, inputs: Any, output: Any) -> None:
        outputs = output if isinstance(output, tuple) else (output,)
        sizes.extend(o.numel() for o in outputs if isinstance(o, torch.Tensor) and keep(o))
        if inputs_of_trainable and any(p.requires_grad for p in module.parameters(recurse=False)):
            sizes.extend(i.numel() for i in inputs if isinstance(i, torch.Tensor) and not i.requires_grad)

    handles = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        model(sample)
    finally:
        for handle in handles:
            handle.remove()
    return sizes


def measure_model(model: Any, sample: Any) -> dict[str, Any]:
    """Parameters, forward FLOPs, activations and CPU latency of `model` on one input sample."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.inference_mode():
        sizes = _leaf_outputs(model, sample, lambda _: True)
    # Counted with gradients off: FlopCounterMode's module tracker hooks every output that requires grad and fails
    # on a parameter's view made without autograd (FT-Transformer's [CLS] token is `weight.expand(...)`).
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        model.requires_grad_(False)
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(sample)
    finally:
        for p in trainable:
            p.requires_grad_(True)
    timings: list[float] = []
    with torch.inference_mode():
        for i in range(LATENCY_WARMUP + LATENCY_RUNS):
            start = time.perf_counter()
            model(sample)
            if i >= LATENCY_WARMUP:
                timings.append((time.perf_counter() - start) * 1000)
                if len(timings) >= LATENCY_MIN_RUNS and sum(timings) >= LATENCY_BUDGET_MS:
                    break  # a large model's median is stable long before 30 passes
    return {
        "params": int(params),
        "flops_per_sample": int(counter.get_total_flops()),
        "activations_per_sample": int(sum(sizes)),
        "largest_activation_per_sample": int(max(sizes, default=0)),
        "cpu_latency_ms": round(statistics.median(timings), 4),
        "input_shape": _shape(sample),
    }


def measure_frozen(model: Any, sample: Any) -> dict[str, int]:
    """Trainable parameters and the activations autograd keeps, for a model built with its backbone frozen:
    every leaf output that requires grad, and the frozen features that enter the trainable layers."""
    import torch

    model = model.eval()
    with torch.enable_grad():
        kept = _leaf_outputs(model, sample, lambda t: t.requires_grad, inputs_of_trainable=True)
    return {"trainable_params_frozen": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "activations_frozen": int(sum(kept))}


class _Generated:
    """The generated project's config and train modules, imported from its src/ (and forgotten on exit)."""

    def __init__(self, project: Path, package: str):
        self.project, self.package, self.src = project, package, str(project / "src")

    def __enter__(self) -> _Generated:
        for name in [m for m in sys.modules if m == self.package or m.startswith(self.package + ".")]:
            del sys.modules[name]  # another project of the same name may have been measured before
        sys.path.insert(0, self.src)
        self.cwd = os.getcwd()
        os.chdir(self.project)  # configs name data paths relative to the project
        self.config = importlib.import_module(f"{self.package}.config")
        self.train = importlib.import_module(f"{self.package}.train")
        return self

    def __exit__(self, *_: object) -> None:
        os.chdir(self.cwd)
        sys.path.remove(self.src)

    def load(self, key: str, *overrides: str) -> Any:
        """The config of `key` as the project composes it; a pretrained model with model.pretrained=false."""
        cfg = self.config.load_config([f"model={key}"], config_dir=self.project / "configs")
        extra = [o for o in overrides if o.split("=")[0].removeprefix("model.") in cfg.model]
        if "pretrained" in cfg.model:
            extra.insert(0, "model.pretrained=false")
        return self.config.load_config([f"model={key}", *extra], config_dir=self.project / "configs") if extra else cfg

    def build(self, cfg: Any) -> tuple[Any, Any]:
        """(the component, one sample) as training builds them: train.build, first training batch's first item."""
        datamodule, module = self.train.build(cfg)
        batch = next(iter(datamodule.train_dataloader()))
        return module.model, _first_item(batch[0])


def params_with_weights(component: Any, params: int) -> int | None:
    """A text encoder's parameters with its published vocabulary; None for every other model (module docstring).

    Built with pretrained=false, the encoder's word embeddings have the mini data's vocabulary (`arch["vocab_size"]`);
    the checkpoint's tokenizer has the one in the component's published table (hf_text.py: `published`, a
    (model_type, config) pair). The difference is rows of the embedding tables of that size.
    """
    from torch import nn

    arch, table = getattr(component, "arch", None), getattr(type(component), "published", None)
    if not isinstance(arch, dict) or not isinstance(table, tuple) or "vocab_size" not in table[1]:
        return None
    vocab, hub = arch["vocab_size"], table[1]["vocab_size"]
    rows = [m.embedding_dim for m in component.modules() if isinstance(m, nn.Embedding) and m.num_embeddings == vocab]
    return params + (hub - vocab) * sum(rows) if rows and hub != vocab else None


def measure_candidates(project: Path, package: str, models: list[str]) -> dict[str, dict[str, Any]]:
    """Instantiate every candidate exactly as the generated project does (its config, data and code).

    Needs torch, lightning and omegaconf importable; raises ImportError otherwise.
    """
    import torch

    out = {}
    with _Generated(project, package) as gen:
        for key in models:
            torch.manual_seed(0)
            cfg = gen.load(key)
            component, sample = gen.build(cfg)
            measured = measure_model(component, sample)
            measured["params_with_weights"] = params_with_weights(component, measured["params"])
            if "input_size" in cfg.model:  # an image backbone resizes every batch to its input size itself
                size = int(cfg.model.input_size)
                measured["input_shape"] += f", resized to {size}x{size} in the model"
            if "freeze_backbone" in cfg.model:
                measured.update(measure_frozen(*gen.build(gen.load(key, "model.freeze_backbone=true"))))
            measured["batch_size"] = int(cfg.data.batch_size)
            measured["epochs"] = int(cfg.trainer.max_epochs)
            measured["precision"] = str(cfg.trainer.precision)
            out[key] = measured
    return out


def count_params(project: Path, package: str, models: list[str]) -> dict[str, int]:
    """The parameter count of every candidate instantiated as `measure_candidates` does, without the timing loop.

    What the A2 gate compares tech.md with: fast with ResNet-50, ConvNeXt or BERT-sized candidates.
    """
    import torch

    out = {}
    with _Generated(project, package) as gen:
        for key in models:
            torch.manual_seed(0)
            datamodule, module = gen.train.build(gen.load(key))
            out[key] = int(sum(p.numel() for p in module.model.parameters()))
    return out
