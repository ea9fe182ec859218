"""The mini datasets that ship in hooks/mini/ and the copier task that copies them, hooks/mini_data.py.

copier runs its tasks in its own interpreter (copier's dependencies only), so the task may import
the standard library and PyYAML and nothing else; hooks/mini/build.py, which needs numpy,
scikit-learn, statsmodels and Pillow, must rebuild exactly what ships.
"""

from __future__ import annotations

import ast
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hooks import mini_data
from hooks.mini import build

from ..helpers import CATALOG, FAMILIES, TEMPLATE

SHIPPED = TEMPLATE / "hooks" / "mini"
HOOK = TEMPLATE / "hooks" / "mini_data.py"
BLOCKED = ("numpy", "pandas", "scipy", "sklearn", "statsmodels", "PIL")  # in the test env, never in copier's


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run_hook(*args: str) -> subprocess.CompletedProcess:
    """`python -I hooks/mini_data.py ARGS` with the framework's data packages made unimportable."""
    argv = [str(HOOK), *args]
    code = (f"import runpy, sys; sys.modules.update(dict.fromkeys({BLOCKED!r})); sys.argv = {argv!r}; "
            f"runpy.run_path({str(HOOK)!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, encoding="utf-8")


def test_every_catalog_family_ships_files_stats_and_a_notice():
    assert {p.parent.name for p in SHIPPED.glob("*/stats.json")} == set(FAMILIES) == set(build.WRITERS)
    for family in FAMILIES:
        assert (SHIPPED / family / "files").is_dir() and (SHIPPED / family / "NOTICE.md").is_file()
    total = sum((SHIPPED / family / name).stat().st_size for family in FAMILIES for name in files_under(SHIPPED / family))
    assert total < 1_000_000, f"the shipped mini datasets weigh {total} bytes"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_notice_restates_the_catalog(family):
    """catalog.yml is the one source of name, origin and licence; NOTICE.md repeats them word for word."""
    mini = CATALOG[family]["mini"]
    lines = (SHIPPED / family / "NOTICE.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"# Mini dataset: {mini['name']}"
    assert f"- origin: {mini['origin']}" in lines and f"- licence: {mini['licence']}" in lines


@pytest.mark.parametrize("family", FAMILIES)
def test_stats_agree_with_the_shipped_files(family):
    stats = json.loads((SHIPPED / family / "stats.json").read_text(encoding="utf-8"))
    files = SHIPPED / family / "files"
    tables = {p.stem: csv_rows(p) for p in files.glob("*.csv")}
    assert stats["samples"] == sum(len(rows) for rows in tables.values())
    for split in ("train", "val", "test"):
        if split in tables:
            assert stats["splits"][split] == len(tables[split])


@pytest.mark.parametrize("family", FAMILIES)
def test_the_builder_rebuilds_exactly_the_shipped_files(tmp_path, family):
    """PNGs are compared by decoded pixels: their bytes depend on the zlib that Pillow links."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "stale.csv").write_text("gone after a rebuild\n")
    build.build(family, tmp_path)
    names = files_under(tmp_path)
    assert names == files_under(SHIPPED / family) - {"NOTICE.md"}
    for name in sorted(names):
        new, old = tmp_path / name, SHIPPED / family / name
        if name.endswith(".png"):
            with Image.open(new) as a, Image.open(old) as b:
                assert (a.mode, a.size, a.tobytes()) == (b.mode, b.size, b.tobytes()), name
        else:
            assert new.read_bytes() == old.read_bytes(), name


def test_the_copier_task_imports_only_the_standard_library_and_yaml():
    roots = set()
    for node in ast.walk(ast.parse(HOOK.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "a relative import needs the hooks package on sys.path"
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in {
                "__import__", "import_module"}:
            pytest.fail("hooks/mini_data.py imports by name")
    assert roots - set(sys.stdlib_module_names) == {"yaml"}


REGRESSION_CARD = """\
# Mini dataset: diabetes progression

- kind: real data (its origin below), shipped with the template as files
- origin: sklearn.datasets.load_diabetes (Efron et al. 2004, bundled with scikit-learn)
- licence: BSD-3-Clause (scikit-learn)
- format: CSV train.csv/val.csv/test.csv: 10 numeric feature columns + target
- samples: 442

It has the on-disk format of the full dataset, so a run on it exercises the real loader.

```json
{
  "format": "CSV train.csv/val.csv/test.csv: 10 numeric feature columns + target",
  "samples": 442,
  "splits": {
    "train": 309,
    "val": 66,
    "test": 67
  },
  "features": 10,
  "target_range": [
    25.0,
    346.0
  ]
}
```
"""


def test_the_task_runs_isolated_without_the_data_packages(tmp_path):
    out = tmp_path / "data" / "mini"
    result = run_hook("--family", "tabular_regression", "--out", str(out))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"wrote 442 samples to {out}/ (CSV)\n"
    assert files_under(out) == {"DATA_CARD.md", "train.csv", "val.csv", "test.csv"}
    assert (out / "DATA_CARD.md").read_text(encoding="utf-8").splitlines() == REGRESSION_CARD.splitlines()
    assert (out / "train.csv").read_bytes() == (SHIPPED / "tabular_regression/files/train.csv").read_bytes()


def test_the_image_task_copies_every_png_of_the_manifest(tmp_path):
    out = tmp_path / "mini"
    result = run_hook("--family", "image_classification", "--out", str(out))
    assert (result.returncode, result.stderr) == (0, "")
    paths = {row["path"] for row in csv_rows(out / "split.csv")}
    assert len(paths) == 600 and files_under(out) == {"DATA_CARD.md", "split.csv", *paths}
    card = (out / "DATA_CARD.md").read_text(encoding="utf-8").splitlines()
    assert card[:7] == [
        "# Mini dataset: scikit-learn digits", "",
        "- kind: real data (its origin below), shipped with the template as files",
        "- origin: sklearn.datasets.load_digits (UCI optdigits, bundled with scikit-learn)",
        "- licence: CC BY 4.0",
        "- format: PNG image folders images/<label>/<id>.png (8x8 grayscale) + split.csv (path,label,split)",
        "- samples: 600",
    ]


@pytest.mark.parametrize(("args", "rc", "message"), [
    (["--family", "nope"], 2, "error: argument --family: invalid choice: 'nope' (choose from 'image_classification', "),
    ([], 2, "error: the following arguments are required: --family (see `mini_data.py --help`)"),
    (["--family", "text_classification", "--out", "{file}"], 1, "error: cannot write the mini dataset to {file}: "),
])
def test_bad_input_is_one_error_line(tmp_path, args, rc, message):
    file = tmp_path / "a_file"
    file.write_text("not a folder\n")
    result = run_hook(*[a.format(file=file) for a in args])
    assert result.returncode == rc and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message.format(file=file)), result.stderr


def test_a_family_that_ships_nothing_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mini_data, "SHIPPED", tmp_path)
    assert mini_data.main(["--family", "tabular_regression", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no mini dataset ships for tabular_regression (") and err.count("\n") == 1
    assert err.endswith("; run `nox -s mini_data`\n")
