"""Training throughput of a generated project: its Lightning loop against a plain PyTorch loop.

Run with the project's venv from the project root (benchmarks/bench.py does this):

    .venvs/debug-cpu/bin/python /path/to/benchmarks/throughput.py --window 20 --rounds 3 [config overrides]

Both loops get the same model initialisation, the same DataLoader, AdamW, the same per-step cosine
schedule and the same loss, on the project's default config (W&B offline included when it is the
default logger); validation is off in both. The plain loop is what a researcher writes by hand.

How a figure is made trustworthy on a small, shared machine:
- the window is sized by time: a calibration run of the plain loop measures a step, then each timed
  window covers `n` steps, `n` chosen so that it lasts at least --window seconds; a round in which a
  window came out shorter (the machine sped up) is run again with more steps and reported apart;
- each loop first runs `warm` untimed steps (at least 2 s: W&B's service start, allocator warm-up);
  the window is the time from the start of step `warm` to the start of step `warm + n`, so it holds
  `n` whole iterations (batch fetch, hooks, logging, progress bar) and no start-up or epoch-end work;
- rounds alternate the loops (plain, Lightning, plain, Lightning, ...) so that a change in the
  machine's load hits both; the ratio is taken per round and reported as median and min-max;
- each window also records CPU seconds, of this process and of its children (W&B's service): where
  the time went, and a ratio less swayed by other jobs than wall time. On a small machine that
  other jobs share, pass --threads 1: torch's intra-op threads then wait on each other whenever a core
  is taken, and either loop's step time varies tenfold.

The generated project freezes the heap out of Python's garbage collector while it trains
(train.py's FrozenHeap); the plain loop, as a researcher writes it, does not. --frozen-plain adds a
third loop per round, the plain one with the heap frozen, to show what is Lightning's own cost.

Prints one JSON object (and writes it to --out): median figures under the keys bench.py reads
(`plain_samples_per_s`, `lightning_samples_per_s`, `ratio`), the spread, and every round.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import ConcatDataset, Dataset

sys.path.insert(0, str(Path.cwd() / "src"))


def clock() -> tuple[float, float, float]:
    """Wall seconds, this process's CPU seconds (all threads), its child processes' CPU seconds (W&B's service).

    The CPU figures say where a window's time went: a loop's own work, or a helper process competing
    for the same cores. Child processes are read from /proc (Linux); elsewhere they count 0.
    """
    children = 0.0
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if fields[1] == me:  # ppid; utime and stime follow at 11 and 12
            children += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return time.perf_counter(), time.process_time(), children


def window(start: tuple[float, float, float], end: tuple[float, float, float]) -> tuple[float, float, float]:
    return end[0] - start[0], end[1] - start[1], end[2] - start[2]


class WindowTimer(L.Callback):
    """Times steps [warm, warm + n) of the Lightning loop: from one on_train_batch_start to another."""

    def __init__(self, warm: int, n: int) -> None:
        self.warm, self.n = warm, n
        self.start = self.seconds = (math.nan,) * 3

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if batch_idx == self.warm:
            self.start = clock()
        elif batch_idx == self.warm + self.n:
            self.seconds = window(self.start, clock())


def plain_window(module: L.LightningModule, loader: Any, warm: int, n: int, lr: float, weight_decay: float,
                 freeze: bool = False) -> tuple[float, float, float]:
    """What a researcher would write by hand: forward, loss, backward, step, scheduler, loss sum.

    Runs warm + n + 1 steps (the schedule spans them all, as Lightning's does) and returns the
    seconds (wall, CPU, children's CPU) from the start of step `warm` to the start of step `warm + n`.
    `freeze`: freeze the heap out of the garbage collector during the loop, as the generated
    project's FrozenHeap callback does (not what a researcher writes: a reference for Lightning's own cost).
    """
    if freeze:
        gc.collect()
        gc.freeze()
    model = module.model
    model.train()
    total = warm + n + 1
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    loss_sum, count = torch.zeros(()), 0
    start = seconds = (math.nan,) * 3
    for step, (x, y) in enumerate(loader):
        if step == warm:
            start = clock()
        elif step == warm + n:
            seconds = window(start, clock())
        if step == total:
            break
        out = model(x)
        loss = module.loss_fn(out.view_as(y) if y.is_floating_point() else out, y)  # as TaskModule._common_step
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.detach() * len(y)
        count += len(y)
    float(loss_sum / count)  # the mean a researcher would print
    gc.unfreeze()
    return seconds


def lightning_window(train_mod: Any, cfg: Any, module: L.LightningModule, datamodule: Any, warm: int,
                     n: int) -> tuple[float, float, float]:
    """The generated loop as `scripts/train.py` builds it (loggers, progress bar), minus checkpoints and validation.

    `cfg` is the run config loaded with `trainer.limit_train_batches=warm + n + 1` and `trainer.max_epochs=1`.
    """
    timer = WindowTimer(warm, n)
    logs = tempfile.mkdtemp(prefix="throughput-")  # the CSV and W&B offline logs of the timed run: thrown away
    trainer, _ = train_mod.build_trainer(cfg, checkpointing=False, run_dir=Path(logs), num_sanity_val_steps=0,
                                         enable_model_summary=False)
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=datamodule)
    if "wandb" in sys.modules:  # end the W&B run now: the plain loop that follows runs without it
        import wandb

        if wandb.run is not None:
            wandb.finish()
    return timer.seconds


def tile(train: Dataset, batches: int, batch_size: int) -> Dataset:
    """The training split repeated until it holds `batches` full batches."""
    return ConcatDataset([train] * max(1, math.ceil(batches * batch_size / len(train))))


def spread(values: list[float], digits: int) -> dict[str, float]:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=20.0, help="seconds each timed window lasts at least")
    parser.add_argument("--rounds", type=int, default=3, help="plain/Lightning pairs, alternating")
    parser.add_argument("--warm", type=float, default=2.0, help="untimed seconds (at least 20 steps) before each window")
    parser.add_argument("--frozen-plain", action="store_true",
                        help="each round also times the plain loop with the heap frozen (as the project's FrozenHeap does)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads for both loops (default: torch's own)")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for scripts/train.py")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    package = next(Path("src").glob("*/config.py")).parent.name
    config = importlib.import_module(f"{package}.config")
    train_mod = importlib.import_module(f"{package}.train")
    overrides = ["trainer.limit_val_batches=0", "trainer.max_epochs=1", *args.overrides]
    cfg = config.load_config(overrides)
    L.seed_everything(cfg.seed)
    datamodule, module = train_mod.build(cfg)
    batch = int(cfg.data.batch_size)
    train = datamodule.splits["train"]
    init = copy.deepcopy(module.state_dict())
    lr, wd = cfg.optim.lr, cfg.optim.weight_decay

    # Calibration: the plain loop's step time, over at least 2 s after 20 warm-up steps.
    n = 20
    while True:
        datamodule.splits["train"] = tile(train, 20 + n + 1, batch)
        seconds = plain_window(module, datamodule.train_dataloader(), 20, n, lr, wd)[0]
        if seconds >= 2.0:
            break
        n *= 2
    step_s = seconds / n
    warm = max(20, math.ceil(args.warm / step_s))
    n = math.ceil(1.25 * args.window / step_s)  # 25% headroom: the machine's load changes

    rounds: list[dict[str, Any]] = []
    short: list[dict[str, Any]] = []  # rounds with a window under --window: re-run with more steps, reported apart
    load_before = os.getloadavg()[0]
    while len(rounds) < args.rounds and len(short) < 2 * args.rounds:
        timed = {"plain": None, "lightning": None, "frozen_plain": None}
        datamodule.splits["train"] = tile(train, warm + n + 1, batch)
        for loop in ("plain", "lightning", "frozen_plain") if args.frozen_plain else ("plain", "lightning"):
            module.load_state_dict(init)
            torch.manual_seed(0)
            if loop == "lightning":
                fit_cfg = config.load_config([*overrides, f"trainer.limit_train_batches={warm + n + 1}"])
                timed[loop] = lightning_window(train_mod, fit_cfg, module, datamodule, warm, n)
            else:
                timed[loop] = plain_window(module, datamodule.train_dataloader(), warm, n, lr, wd, freeze=loop == "frozen_plain")
        plain, lightning, frozen = timed["plain"], timed["lightning"], timed["frozen_plain"]
        row = {"steps": n, "plain_s": round(plain[0], 2), "lightning_s": round(lightning[0], 2),
               "plain_samples_per_s": round(n * batch / plain[0], 1),
               "lightning_samples_per_s": round(n * batch / lightning[0], 1),
               "ratio": round(plain[0] / lightning[0], 3),
               "cpu_ratio": round(plain[1] / (lightning[1] + lightning[2]), 3),
               "cpu_ms_per_step": {"plain": round(1e3 * plain[1] / n, 3), "lightning": round(1e3 * lightning[1] / n, 3),
                                   "lightning_children": round(1e3 * lightning[2] / n, 3)}}
        if frozen is not None:
            row.update(frozen_plain_s=round(frozen[0], 2), frozen_ratio=round(frozen[0] / lightning[0], 3))
        print(json.dumps(row), file=sys.stderr, flush=True)
        shortest = min(t[0] for t in timed.values() if t is not None)
        if shortest < args.window:  # the machine sped up: again, with windows long enough
            short.append(row)
            n = math.ceil(n * 1.1 * args.window / shortest)
        else:
            rounds.append(row)
    if not rounds:
        raise SystemExit(f"no round had windows of {args.window} s or more in {len(short)} tries: see the rounds above")

    ratio = spread([r["ratio"] for r in rounds], 3)
    cpu_ratio = spread([r["cpu_ratio"] for r in rounds], 3)
    frozen_ratio = spread([r["frozen_ratio"] for r in rounds], 3) if args.frozen_plain else None
    plain_rate = spread([r["plain_samples_per_s"] for r in rounds], 1)
    lightning_rate = spread([r["lightning_samples_per_s"] for r in rounds], 1)
    result = {
        "model": cfg.model.name,
        "logger": cfg.logger.name,
        "batch_size": batch,
        "plain_samples_per_s": plain_rate["median"],
        "lightning_samples_per_s": lightning_rate["median"],
        "ratio": ratio["median"],
        "ratio_spread": ratio,
        "cpu_ratio_spread": cpu_ratio,  # by CPU seconds (Lightning's plus W&B's service): less swayed by other jobs than wall time
        "frozen_ratio_spread": frozen_ratio,  # against the plain loop with a frozen heap (--frozen-plain)
        "plain_spread": plain_rate,
        "lightning_spread": lightning_rate,
        "rounds": len(rounds),
        "short_rounds": short,  # discarded: a window came out under --window
        "window_s_min": min(min(r["plain_s"], r["lightning_s"], r.get("frozen_plain_s", math.inf)) for r in rounds),
        "warm_steps": warm,
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before and after: other jobs' load
        "per_round": rounds,
    }
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
