"""Copy the mini dataset of a task family into data/mini/, in the full dataset's on-disk format.

Run by copier on `copy` (see copier.yml `_tasks`); also usable by hand:

    python hooks/mini_data.py --family image_classification --out data/mini [--force]

copier runs its tasks in its own interpreter, so this script imports only the standard library
and PyYAML (a dependency of copier). The data ships in this repository: hooks/mini/<family>/files/
is copied as it is, stats.json feeds data/mini/DATA_CARD.md, and NOTICE.md states origin and
licence; hooks/mini/build.py (framework only, `nox -s mini_data`) writes files/ and stats.json.
The card's name, origin and licence come from catalog.yml. Nothing is downloaded.
The mini data is project-owned: an existing, non-empty data/mini/ is kept unless --force, so
`copier recopy` (which runs the copy tasks again) never rewrites it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import yaml

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "catalog.yml"
SHIPPED = ROOT / "hooks" / "mini"


class MiniDataError(Exception):
    """A missing shipped file or an unwritable --out: main() prints it as one `error:` line (exit 1)."""


class Parser(argparse.ArgumentParser):
    """A bad argument is one `error:` line and exit 2 (as `python -m validators`), not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def load_families() -> dict:
    """catalog.yml's family -> spec mapping (as hooks.planner.catalog.load_catalog, without importing hooks)."""
    try:
        return yaml.safe_load(CATALOG.read_text(encoding="utf-8"))["catalog"]["default"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        raise MiniDataError(f"cannot read the catalog {CATALOG}: {err}") from None


def load_stats(family: str) -> dict:
    """hooks/mini/<family>/stats.json: what build.py recorded about the shipped files."""
    path = SHIPPED / family / "stats.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MiniDataError(f"no mini dataset ships for {family} ({path}: {err}); run `nox -s mini_data`") from None


def copy_files(family: str, out: Path) -> None:
    """hooks/mini/<family>/files/ into out/, over what is there (--force)."""
    src = SHIPPED / family / "files"
    if not src.is_dir():
        raise MiniDataError(f"no mini dataset ships for {family} ({src} is missing); run `nox -s mini_data`")
    try:
        shutil.copytree(src, out, dirs_exist_ok=True)
    except (OSError, shutil.Error) as err:
        raise MiniDataError(f"cannot write the mini dataset to {out}: {err}") from None


def write_data_card(out: Path, mini: dict, stats: dict) -> None:
    """data/mini/DATA_CARD.md: what the mini set is, where it comes from, machine-readable stats."""
    origin = "generated (synthetic)" if mini["generated"] else "real data (its origin below), shipped with the template as files"
    lines = [
        f"# Mini dataset: {mini['name']}",
        "",
        f"- kind: {origin}",
        f"- origin: {mini['origin']}",
        f"- licence: {mini['licence']}",
        f"- format: {stats['format']}",
        f"- samples: {stats['samples']}",
        "",
        "It has the on-disk format of the full dataset, so a run on it exercises the real loader.",
        "",
        "```json",
        json.dumps(stats, indent=2, ensure_ascii=False),
        "```",
        "",
    ]
    try:
        (out / "DATA_CARD.md").write_text("\n".join(lines), encoding="utf-8")
    except OSError as err:
        raise MiniDataError(f"cannot write {out / 'DATA_CARD.md'}: {err}") from None


def main(argv: list[str] | None = None) -> int:
    try:
        families = load_families()
    except MiniDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True, choices=sorted(families))
    parser.add_argument("--out", type=Path, default=Path("data/mini"))
    parser.add_argument("--force", action="store_true", help="rewrite an existing, non-empty --out folder")
    args = parser.parse_args(argv)
    if not args.force and args.out.is_dir() and any(args.out.iterdir()):
        print(f"kept the existing {args.out}/ (project-owned; --force rewrites it)")
        return 0
    try:
        stats = load_stats(args.family)
        copy_files(args.family, args.out)
        write_data_card(args.out, families[args.family]["mini"], stats)
    except MiniDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {stats['samples']} samples to {args.out}/ ({stats['format'].split(' ')[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
