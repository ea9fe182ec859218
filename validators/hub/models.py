"""`fetch-weights`: each selected pretrained model's files from the hub into weights/<model>/, and weights/manifest.yaml.

    python -m validators fetch-weights                 # the model configs/train.yaml picks, when it is pretrained
    python -m validators fetch-weights resnet18        # named models (configs/hub.yaml lists them)
    python -m validators fetch-weights --all --force   # every pretrained candidate, fetched again even when up to date

Only what transformers' from_pretrained needs is fetched, from the repository's top level: config.json, the
safetensors weights (the .bin files only when there are none), and the tokenizer or preprocessor files; never
README, ONNX, TensorFlow, Flax or other folders. A model is fetched into weights/.<model>.partial/, each file checked
against the hub's listing, then moved into place: a failed fetch leaves the previous weights/<model>/ as it was.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import HubError
from ..project import Project
from ..weights import Fetch, FileRecord, read_weights, shown, verify, weights_root, write_weights
from .client import Hub, RemoteFile
from .sources import Source

NEEDED = frozenset({"config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
                    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json",
                    "merges.txt", "spiece.model", "sentencepiece.bpe.model"})
SAFETENSORS = (".safetensors", ".safetensors.index.json")
PYTORCH_BIN = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def select(files: list[RemoteFile]) -> list[RemoteFile]:
    """What from_pretrained reads: top-level config, weights (safetensors preferred) and tokenizer/preprocessor files."""
    top = [f for f in files if "/" not in f.path]
    safetensors = [f for f in top if f.path.endswith(SAFETENSORS)]
    weights = safetensors or [f for f in top if f.path in PYTORCH_BIN or f.path.startswith("pytorch_model-") and f.path.endswith(".bin")]
    return sorted([f for f in top if f.path in NEEDED] + weights, key=lambda f: f.path)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def fetch_model(project: Project, hub: Hub, name: str, source: Source, *, force: bool = False,
                report: Callable[[str], None] = print) -> Fetch:
    """Fetch `name` from `source` (or keep it when the manifest records this commit and every hash still matches)."""
    root = weights_root(project)
    commit = hub.resolve(source.repo, source.revision)
    kept = read_weights(root).get(name)
    if not force and kept and (kept.repo, kept.commit) == (source.repo, commit) and not list(verify(project, name)):
        report(f"{name}: up to date ({source.repo}@{source.revision} is still commit {commit[:12]}; {len(kept.files)} files, "
               f"{sum(r.bytes for r in kept.files.values()):,} bytes, every sha256 as fetched; --force fetches again)")
        return kept
    listed = hub.tree(source.repo, commit)
    chosen = select(listed)
    if not any(f.path == "config.json" for f in chosen) or not any(f.path.endswith((".safetensors", ".bin")) for f in chosen):
        raise HubError(f"{source.repo}@{commit[:12]} has no config.json with safetensors or pytorch_model.bin weights at its "
                       f"top level ({len(listed)} files)", "is it a transformers model? set another repo in configs/hub.yaml")
    left = sorted({f.path.split("/")[0] + ("/" if "/" in f.path else "") for f in listed} - {f.path for f in chosen})
    report(f"{name}: {source.repo}@{source.revision} -> commit {commit[:12]}: {len(chosen)} of {len(listed)} files"
           + (f" (left out: {', '.join(left)})" if left else ""))
    partial = root / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    files: dict[str, FileRecord] = {}
    width = max(len(f.path) for f in chosen)
    start = time.perf_counter()
    try:
        for remote in chosen:
            began = time.perf_counter()
            _, files[remote.path] = hub.download(source.repo, commit, remote, partial)
            seconds = time.perf_counter() - began
            rate = f"  {remote.size / seconds / 1e6:7.1f} MB/s" if seconds > 0 and remote.size >= 1_000_000 else ""
            report(f"  {remote.path:<{width}}  {remote.size:>14,} bytes  {seconds:7.2f} s{rate}")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # weights/<model>/ stays as it was
        raise
    elapsed = time.perf_counter() - start
    shutil.rmtree(partial / ".cache", ignore_errors=True)  # huggingface_hub's download records: not part of the weights
    install(partial, root / name)
    fetched = Fetch(source.repo, source.revision, commit, hub.endpoint, utc_now(), files)
    write_weights(root, {**read_weights(root), name: fetched})
    total = sum(r.bytes for r in files.values())
    report(f"{name}: {len(files)} files, {total:,} bytes in {elapsed:.2f} s -> {shown(project, root / name)}/ "
           f"(sha256 of each in {shown(project, root / 'manifest.yaml')})")
    return fetched


def install(partial: Path, final: Path) -> None:
    """Swap the finished download in: the old folder moves aside, the new one takes its name, the old one goes."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    partial.rename(final)
    shutil.rmtree(old, ignore_errors=True)
