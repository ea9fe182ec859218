"""`fetch-data` against the hub stand-in: the parquet files of ylecun/mnist and stanfordnlp/imdb (tiny, same schema)
become data/full/ in exactly the layout the image and text data modules read, with a manifest of every file.

pyarrow is added for the command only, as `nox -s fetch_data` does (uv run --with): the first run downloads it."""

from __future__ import annotations

import csv
import hashlib
import random

import yaml
from PIL import Image

from validators.hub import PARQUET_READER

from ..helpers.hf_fixtures import TEXTS
from .conftest import PYARROW, hub_env, make_project, validators


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rows(path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_tests_add_the_pin_the_project_adds():
    assert PYARROW == PARQUET_READER


def test_mnist_becomes_png_folders_and_split_csv(hub, image_project, tmp_path):
    done = validators(image_project, hub_env(hub, tmp_path / "hf"), "fetch-data", parquet=True)
    assert done.returncode == 0, done.stderr
    full = image_project / "data/full"
    val = set(random.Random(42).sample(range(30), 3))  # the documented draw: 0.1 of the 30 train rows, seed 42
    train = [(i, i % 10) for i in range(30) if i not in val]
    expected = ([{"path": f"images/{d}/train-{n:05d}.png", "label": str(d), "split": "train"} for n, (_, d) in enumerate(train)]
                + [{"path": f"images/{i % 10}/val-{n:05d}.png", "label": str(i % 10), "split": "val"} for n, i in enumerate(sorted(val))]
                + [{"path": f"images/{d}/test-{d:05d}.png", "label": str(d), "split": "test"} for d in range(10)])
    assert rows(full / "split.csv") == expected
    assert sorted(p.relative_to(full).as_posix() for p in full.rglob("*") if p.is_file()) == sorted(
        [r["path"] for r in expected] + ["split.csv", "manifest.yaml"])
    for r in expected:  # each image is its row's: the fixture draws digit d as a block of brightness 200 + 5 d
        with Image.open(full / r["path"]) as img:
            assert (img.size, img.mode, img.getpixel((12, 5 + int(r["label"])))) == ((28, 28), "L", 200 + 5 * int(r["label"]))
    manifest = yaml.safe_load((full / "manifest.yaml").read_text())["dataset"]
    served = hub.repo("ylecun/mnist", "dataset")
    assert (manifest["repo"], manifest["commit"], manifest["endpoint"]) == ("ylecun/mnist", served.commit, hub.url)
    assert manifest["files"] == {p: {"sha256": sha(served.files[p]), "bytes": len(served.files[p])}
                                 for p in ("mnist/test-00000-of-00001.parquet", "mnist/train-00000-of-00001.parquet")}
    assert manifest["written"] == {p.relative_to(full).as_posix(): {"sha256": sha(p.read_bytes()), "bytes": p.stat().st_size}
                                   for p in full.rglob("*") if p.is_file() and p.name != "manifest.yaml"}
    assert manifest["val"] == "0.1 of the hub's train split (3 of 30 rows), drawn by random.Random(42).sample; train keeps the rest"
    assert done.stdout.splitlines()[-1] == ("data/full/: train 27, val 3, test 10 rows (41 files, "
                                            f"{sum(v['bytes'] for v in manifest['written'].values()):,} bytes); val: {manifest['val']}")
    assert sorted(p.name for p in (image_project / "data").iterdir()) == ["full"]  # no partial, old or download folder left


def test_imdb_becomes_train_val_test_csv(hub, tmp_path):
    project = make_project(tmp_path / "text_project", family="text_classification", model="fasttext")
    done = validators(project, hub_env(hub, tmp_path / "hf"), "fetch-data", "--val-fraction", "0.2", "--seed", "7", parquet=True)
    assert done.returncode == 0, done.stderr
    full = project / "data/full"
    names = ["neg", "pos"]
    val = set(random.Random(7).sample(range(10), 2))
    assert rows(full / "train.csv") == [{"text": t, "label": names[y]} for i, (t, y) in enumerate(TEXTS["train"]) if i not in val]
    assert rows(full / "val.csv") == [{"text": t, "label": names[y]} for i, (t, y) in enumerate(TEXTS["train"]) if i in val]
    assert rows(full / "test.csv") == [{"text": t, "label": names[y]} for t, y in TEXTS["test"]]
    assert sorted(p.name for p in full.iterdir()) == ["manifest.yaml", "test.csv", "train.csv", "val.csv"]
    assert "skipped: plain_text/unsupervised-00000-of-00001.parquet" in done.stdout  # unlabelled: no split of the data module


def test_a_fetch_replaces_its_own_data_but_never_the_researchers(hub, image_project, tmp_path):
    own = image_project / "data/full/split.csv"
    own.parent.mkdir(parents=True)
    own.write_text("path,label,split\n")
    refused = validators(image_project, hub_env(hub, tmp_path / "hf"), "fetch-data")
    assert (refused.returncode, refused.stderr.strip()) == (1, "error: data/full/ holds files nox -s fetch_data did not write "
                                                               "(split.csv; no manifest.yaml of it) (hint: move them away, or "
                                                               "--force replaces them)")
    assert own.read_text() == "path,label,split\n"
    assert validators(image_project, hub_env(hub, tmp_path / "hf"), "fetch-data", "--force", parquet=True).returncode == 0
    again = validators(image_project, hub_env(hub, tmp_path / "hf"), "fetch-data", parquet=True)  # its own: replaced
    assert again.returncode == 0, again.stderr


def test_a_family_without_a_hub_dataset_is_one_error_line(hub, tmp_path):
    project = make_project(tmp_path / "tab", family="tabular_regression", model="mlp")
    done = validators(project, hub_env(hub, tmp_path / "hf"), "fetch-data")
    assert (done.returncode, done.stderr.strip()) == (1, "error: the tabular_regression family has no full dataset on the hub "
                                                         "(configs/hub.yaml: dataset: null) (hint: put yours into data/full/ as "
                                                         "configs/data/full.yaml describes)")
    assert hub.requests == []


def test_without_pyarrow_the_command_says_how_to_get_it(hub, image_project, tmp_path):
    done = validators(image_project, hub_env(hub, tmp_path / "hf"), "fetch-data")
    assert (done.returncode, done.stderr.strip()) == (1, "error: reading the hub's parquet files needs the Python package "
                                                         f"'pyarrow': nox -s fetch_data adds {PARQUET_READER} for the command "
                                                         f"(or: uv run --with {PARQUET_READER} python -m validators fetch-data)")
    assert not (image_project / "data/full").exists()
