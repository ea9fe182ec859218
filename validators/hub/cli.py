"""The command line of the hub wing (`python -m validators <command>`; nox sessions run them).

    fetch-weights [MODEL ...] [--all] [--force]       where there is internet: weights/<model>/ and weights/manifest.yaml
    fetch-data [--val-fraction F] [--seed N] [--force] where there is internet: the full dataset into data/full/
    weights-check [MODEL ...] [--all]                 anywhere: weights/ against its manifest (every file, every sha256)

MODEL defaults to the model configs/train.yaml picks when its config says `pretrained: true`; --all means every
configs/model/*.yaml that does. HF_ENDPOINT (a mirror) and HF_TOKEN (gated or private repositories) come from the
environment only; the token is sent to the hub and written nowhere. A failed fetch is one `error:` line with a hint.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import weights
from ..errors import HubError, UsageError
from ..project import Project
from . import sources as hub_sources


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} is not between 0 and 1")
    return value


def register(sub: Any) -> None:
    """Add the hub commands to the validators' argument parser."""
    p = sub.add_parser("fetch-weights", help="download pretrained weights from the hub into weights/<model>/ (internet)")
    p.add_argument("models", nargs="*", metavar="MODEL", help="models of configs/hub.yaml (default: the configured one)")
    p.add_argument("--all", action="store_true", help="every model whose configs/model/<name>.yaml says pretrained: true")
    p.add_argument("--force", action="store_true", help="download again even when the manifest's hashes still match")
    p.set_defaults(handler=fetch_weights)
    p = sub.add_parser("fetch-data", help="download the catalog's full dataset from the hub into data/full/ (internet)")
    p.add_argument("--val-fraction", type=fraction, default=0.1, help="of train, when the hub has no validation split (0.1)")
    p.add_argument("--seed", type=int, default=42, help="random.Random(seed) draws the validation rows (42)")
    p.add_argument("--force", action="store_true", help="replace a data/full/ that fetch-data did not write")
    p.set_defaults(handler=fetch_data)
    p = sub.add_parser("weights-check", help="weights/ against weights/manifest.yaml: every file, every sha256")
    p.add_argument("models", nargs="*", metavar="MODEL", help="default: the configured model, when it is pretrained")
    p.add_argument("--all", action="store_true", help="every model whose configs/model/<name>.yaml says pretrained: true")
    p.set_defaults(handler=weights_check)


def selected(project: Project, args: argparse.Namespace, listed: dict[str, Any] | None = None) -> tuple[list[str], str]:
    """(models, why none) from the command line: names, --all, or the configured model when it is pretrained."""
    if args.models and args.all:
        raise UsageError("name models or give --all, not both")
    unknown = [m for m in args.models if listed is not None and m not in listed]
    if unknown:
        raise UsageError(f"{', '.join(unknown)}: not in configs/hub.yaml (its models: {', '.join(listed or {}) or 'none'})")
    if args.models:
        return list(dict.fromkeys(args.models)), ""
    pretrained = weights.pretrained_models(project)
    if not pretrained or args.all:
        return pretrained, "no configs/model/*.yaml says pretrained: true"
    model = weights.configured_model(project)
    if model in pretrained:
        return [model], ""
    others = f" (--all: {', '.join(pretrained)})" if pretrained else ""
    return [], f"configs/train.yaml picks {model}, which is not pretrained: name the models to fetch{others}"


def fetch_weights(project: Project, args: argparse.Namespace) -> int:
    from .client import Hub
    from .models import fetch_model

    sources = hub_sources.load(project)
    models, why = selected(project, args, sources.models)
    missing = [m for m in models if m not in sources.models]
    if missing:
        raise HubError(f"configs/model/{missing[0]}.yaml says pretrained: true, but configs/hub.yaml has no models.{missing[0]}",
                       "add its repo and revision there (copier update restores the catalog's)")
    if not models:
        print(f"nothing to fetch: {why}")
        return 0
    hub = Hub()
    print(f"hub: {hub.endpoint} (HF_TOKEN {'set' if hub.has_token else 'not set'}); weights: "
          f"{weights.shown(project, weights.weights_root(project))}/")
    failed = 0
    for model in models:
        try:
            fetch_model(project, hub, model, sources.models[model], force=args.force)
        except HubError as err:
            print(f"error: {model}: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def fetch_data(project: Project, args: argparse.Namespace) -> int:
    from .client import Hub
    from .datasets import fetch_dataset

    source = hub_sources.load(project).dataset
    if source is None:
        raise HubError(f"the {project.answers.get('task_family', 'project')} family has no full dataset on the hub "
                       "(configs/hub.yaml: dataset: null)", "put yours into data/full/ as configs/data/full.yaml describes")
    hub = Hub()
    print(f"hub: {hub.endpoint} (HF_TOKEN {'set' if hub.has_token else 'not set'}); dataset {source.repo} -> data/full/ "
          f"({source.layout})")
    fetch_dataset(project, hub, source, val_fraction=args.val_fraction, seed=args.seed, force=args.force)
    return 0


def weights_check(project: Project, args: argparse.Namespace) -> int:
    models, why = selected(project, args)
    if not models:
        print(f"nothing to check: {why}")
        return 0
    root = weights.weights_root(project)
    bad = 0
    for model in models:
        errors = list(weights.verify(project, model))
        for error in errors:
            print(error)
        if errors:
            bad += 1
            continue
        entry = weights.read_weights(root)[model]
        print(f"{model}: {len(entry.files)} files, {sum(r.bytes for r in entry.files.values()):,} bytes, every sha256 as "
              f"fetched from {entry.repo}@{entry.commit[:12]} ({weights.shown(project, root / model)}/)")
    return 1 if bad else 0
