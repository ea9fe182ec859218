"""Resource figures for tech.md: measured on the generated model, extrapolated by documented formulas.

Measured (by `measure_candidates`, inside the generated project, on its mini data):
- parameters: `sum(p.numel())` of the instantiated model component;
- forward FLOPs per sample: `torch.utils.flop_counter.FlopCounterMode` on one sample;
- activations per sample: the elements of every leaf module's output for one sample (what
  autograd keeps for the backward pass, to first order);
- CPU latency: median of 30 batch-1 forward passes on the machine that generated the project.

Estimated (by `estimate`), with every constant below:
- training memory (GB) = (16 B x params + 4 B x activations x batch + 0.5 GB) / 1e9 at fp32 with
  Adam: weights 4 B + gradients 4 B + two moments 8 B per parameter; 0.5 GB for the CUDA context
  and allocator slack. bf16-mixed halves the activation bytes.
- training time (h) = 3 x forward FLOPs x samples x epochs / (peak FLOP/s x utilisation) / 3600.
  Backward costs about twice the forward pass (Kaplan et al. 2020, "Scaling Laws", sec. 2.1).
  Utilisation 0.3: small models rarely keep a GPU's tensor cores busier; data loading is not
  modelled, so treat the figure as a lower bound.
"""

from __future__ import annotations

import dataclasses
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
CONTEXT_GB = 0.5              # CUDA context and allocator slack
TRAIN_FLOPS_FACTOR = 3        # forward + backward (about 2x forward)
UTILISATION = 0.3
# What tech.md says for a figure until `nox -s setup` measures it in the project venv (copier's own
# Python has no torch); the A2 gate accepts it only before the project venv exists.
PENDING = "pending: measured by `nox -s setup`"
PENDING_SOURCE = "pending: measured by `nox -s setup` in the project venv"


def hardware(gpu: str | None, cpu_only: bool) -> dict[str, Any]:
    """The hardware the estimates are for: the requirement's GPU, CPU when it says CPU-only, else a T4."""
    if cpu_only and not gpu:
        return {"name": "CPU", "source": "requirement says CPU only", **GPU_TABLE["CPU"]}
    if gpu in GPU_TABLE:
        return {"name": gpu, "source": "named in the requirement", **GPU_TABLE[gpu]}
    return {"name": DEFAULT_GPU, "source": "default (no GPU named in the requirement)", **GPU_TABLE[DEFAULT_GPU]}


def estimate(measured: dict[str, Any], hw: dict[str, Any], *, batch_size: int, epochs: int, samples: int,
             precision: str = "32-true") -> dict[str, float | None]:
    """Training memory (GB) and time (h) for one candidate from its measured figures."""
    params, acts, flops = measured.get("params"), measured.get("activations_per_sample"), measured.get("flops_per_sample")
    if params is None or acts is None or flops is None:
        return {"train_memory_gb": None, "train_hours": None}
    mixed = "mixed" in precision or precision.startswith(("16", "bf16"))
    act_bytes = 2 if mixed else 4
    peak = (hw["tensor_tflops"] if mixed else hw["fp32_tflops"]) * 1e12
    memory = (BYTES_PER_PARAM * params + act_bytes * acts * batch_size) / 1e9 + (CONTEXT_GB if hw["name"] != "CPU" else 0)
    hours = TRAIN_FLOPS_FACTOR * flops * samples * epochs / (peak * UTILISATION) / 3600
    return {"train_memory_gb": round(memory, 3), "train_hours": round(hours, 4)}


def apply(doc: dict[str, Any], measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """tech.md's front matter with the measured figures and the estimates that follow from them.

    `measured` maps candidate keys to `measure_candidates`' figures; a candidate without any stays
    pending. The batch size, epochs and precision are the generated configs' (read while measuring).
    """
    first = next(iter(measured.values()), {})
    a, hw = doc["assumptions"], doc["hardware"]
    if first:
        a.update(batch_size=first["batch_size"], epochs=first["epochs"], precision=first["precision"])
    for c in doc["candidates"]:
        figures = measured.get(c["key"])
        if not figures:
            c.update(params=None, params_source=PENDING_SOURCE, flops_per_sample=None, activations_per_sample=None,
                     cpu_latency_ms=None, train_memory_gb=None, train_hours=None)
            continue
        c.update({k: figures[k] for k in ("params", "flops_per_sample", "activations_per_sample", "cpu_latency_ms")})
        c["params_source"] = f"measured: instantiated from the generated configs/model/{c['key']}.yaml at the mini data's sizes"
        c.update(estimate(figures, hw, batch_size=a["batch_size"], epochs=a["epochs"], samples=a["full_samples"],
                          precision=a["precision"]))
    return doc


def pending(doc: dict[str, Any]) -> list[str]:
    """The candidates of tech.md's front matter whose figures are not measured yet."""
    return [c["key"] for c in doc["candidates"] if not str(c.get("params_source", "")).startswith("measured")]


def measure_model(model: Any, sample: Any) -> dict[str, Any]:
    """Parameters, forward FLOPs, activations and CPU latency of `model` on one input sample."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    params = sum(p.numel() for p in model.parameters())
    elements = [0]

    def count(_module: Any, _inputs: Any, output: Any) -> None:
        outputs = output if isinstance(output, tuple) else (output,)
        elements[0] += sum(o.numel() for o in outputs if isinstance(o, torch.Tensor))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    with torch.inference_mode():
        model(sample)
    for handle in handles:
        handle.remove()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(sample)
    timings = []
    with torch.inference_mode():
        for i in range(35):
            start = time.perf_counter()
            model(sample)
            if i >= 5:
                timings.append((time.perf_counter() - start) * 1000)
    return {
        "params": int(params),
        "flops_per_sample": int(counter.get_total_flops()),
        "activations_per_sample": int(elements[0]),
        "cpu_latency_ms": round(statistics.median(timings), 4),
    }


def measure_candidates(project: Path, package: str, models: list[str]) -> dict[str, dict[str, Any]]:
    """Instantiate every candidate exactly as the generated project does (its config, data and code);
    a pretrained one with `model.pretrained=false`: its architecture with random weights (no weights/ needed).

    Needs torch, lightning and omegaconf importable; raises ImportError otherwise.
    """
    import torch

    src = str(project / "src")
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]  # another project of the same name may have been measured before
    sys.path.insert(0, src)
    cwd = os.getcwd()
    os.chdir(project)  # configs name data paths relative to the project
    try:
        config = importlib.import_module(f"{package}.config")
        train = importlib.import_module(f"{package}.train")
        torch.manual_seed(0)
        out = {}
        for key in models:
            pretrained = any(f.name == "pretrained" for f in dataclasses.fields(config.MODELS[key][0]))
            overrides = [f"model={key}"] + (["model.pretrained=false"] if pretrained else [])
            cfg = config.load_config(overrides, config_dir=project / "configs")
            datamodule, module = train.build(cfg)
            x, _ = next(iter(datamodule.train_dataloader()))
            measured = measure_model(module.model, x[:1])
            measured["batch_size"] = int(cfg.data.batch_size)
            measured["epochs"] = int(cfg.trainer.max_epochs)
            measured["precision"] = str(cfg.trainer.precision)
            out[key] = measured
        return out
    finally:
        os.chdir(cwd)
        sys.path.remove(src)
