"""Training throughput of a generated project: its Lightning loop against a plain PyTorch loop.

Run with the project's venv from the project root (benchmarks/bench.py does this):

    .venvs/debug-cpu/bin/python /path/to/benchmarks/throughput.py --min-steps 300

Both loops get the same model initialisation, the same DataLoader, AdamW and per-step cosine
schedule, and run on the project's default config. The training split is tiled so that an epoch
has at least --min-steps steps: throughput is a steady-state number, not start-up cost. The first
epoch of each loop is a warm-up and is not timed. Prints one JSON object (and writes it to --out).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import ConcatDataset

sys.path.insert(0, str(Path.cwd() / "src"))


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        self.times.append(time.perf_counter() - self._t)


def plain_loop(module, loader, epochs: int, lr: float, weight_decay: float) -> list[float]:
    """What a researcher would write by hand: forward, loss, backward, step, scheduler, loss sum."""
    model = module.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        loss_sum, n = torch.zeros(()), 0
        for x, y in loader:
            out = model(x)
            loss = module.loss_fn(out.view_as(y) if y.is_floating_point() else out, y)  # as _common_step
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach() * len(y)
            n += len(y)
        float(loss_sum / n)  # the epoch mean a researcher would print
        times.append(time.perf_counter() - t)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-steps", type=int, default=300, help="steps per epoch after tiling the training split")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loop; the first is warm-up")
    parser.add_argument("--rounds", type=int, default=3, help="alternate plain/Lightning this many times; best of each")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for scripts/train.py")
    args = parser.parse_args()

    package = next(Path("src").glob("*/config.py")).parent.name
    config = importlib.import_module(f"{package}.config")
    train_mod = importlib.import_module(f"{package}.train")
    cfg = config.load_config(["trainer.limit_val_batches=0", f"trainer.max_epochs={args.epochs}", *args.overrides])
    datamodule, module = train_mod.build(cfg)
    train = datamodule.splits["train"]
    steps = math.ceil(len(train) / cfg.data.batch_size)
    datamodule.splits["train"] = ConcatDataset([train] * max(1, math.ceil(args.min_steps / steps)))
    samples = len(datamodule.splits["train"])
    init = copy.deepcopy(module.state_dict())

    best = {"plain": math.inf, "lightning": math.inf}
    for _ in range(args.rounds):
        module.load_state_dict(init)
        torch.manual_seed(0)
        times = plain_loop(module, datamodule.train_dataloader(), args.epochs, cfg.optim.lr, cfg.optim.weight_decay)
        best["plain"] = min(best["plain"], sum(times[1:]) / (args.epochs - 1))

        module.load_state_dict(init)
        torch.manual_seed(0)
        timer = EpochTimer()
        logs = tempfile.mkdtemp(prefix="throughput-")  # CSV logs of the timed run: thrown away
        trainer, _ = train_mod.build_trainer(cfg, checkpointing=False, run_dir=Path(logs), num_sanity_val_steps=0,
                                             enable_model_summary=False)
        trainer.callbacks.append(timer)
        trainer.fit(module, datamodule=datamodule)
        best["lightning"] = min(best["lightning"], sum(timer.times[1:]) / (args.epochs - 1))

    result = {
        "model": cfg.model.name,
        "batch_size": cfg.data.batch_size,
        "samples_per_epoch": samples,
        "plain_samples_per_s": round(samples / best["plain"], 1),
        "lightning_samples_per_s": round(samples / best["lightning"], 1),
        "ratio": round(best["plain"] / best["lightning"], 3),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
