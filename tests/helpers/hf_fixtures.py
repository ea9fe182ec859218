"""Build the repositories the Hugging Face hub stand-in serves (tests/helpers/hf_server.py): tiny models saved with
transformers' `save_pretrained`, and tiny parquet datasets shaped like the catalog's, under tests/data/hub/.

    uv run --no-project --python <a venv with transformers==5.24.0 and torch> --with pyarrow==26.0.1 \\
        --with pillow==13.0.0 python tests/helpers/hf_fixtures.py          # rewrites tests/data/hub/

The files are committed (about 150 KB), so the tests need neither transformers nor pyarrow to serve them:
- models/microsoft/resnet-18: a ResNetForImageClassification (basic blocks, widths 8 and 16, 4 labels) as
  config.json + model.safetensors, its preprocessor_config.json (the real repo's values), and what the real repo
  also has and a fetch must leave out: pytorch_model.bin (the same weights, torch.save), tf_model.h5, onnx/model.onnx
  (placeholders), README.md, .gitattributes;
- models/google-bert/bert-base-chinese: a BertForMaskedLM (2 layers, hidden 16) and a BertTokenizerFast over a
  character vocabulary, saved with save_pretrained (tokenizer.json, tokenizer_config.json), plus
  flax_model.msgpack (placeholder), README.md, .gitattributes;
- datasets/ylecun/mnist: mnist/{train,test}-00000-of-00001.parquet, columns image {bytes: PNG, path} and label
  (ClassLabel 0-9), 3 train and 1 test image per class, with the `huggingface` schema metadata the hub's files carry;
- datasets/stanfordnlp/imdb: plain_text/{train,test,unsupervised}-00000-of-00001.parquet, columns text and label
  (ClassLabel neg, pos; -1 in unsupervised), texts with commas, quotes, a newline and Chinese characters.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "data" / "hub"
LFS_ATTRIBUTES = "".join(f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
                         for ext in ("bin", "h5", "msgpack", "onnx", "ot", "parquet", "safetensors"))
PLACEHOLDER = b"placeholder: a file the real repository has and a fetch leaves out\n"
RESNET_PREPROCESSOR = {"crop_pct": 0.875, "do_normalize": True, "do_resize": True, "feature_extractor_type": "ConvNextFeatureExtractor",
                       "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": 224}
CHINESE = "这个屏幕很差电池好极了质量不错价格便宜快递慢服务态度满意失望推荐再也不会买手机耳机声音清楚"
TEXTS = {
    "train": [("A wonderful film, moving and funny.", 1), ("Dull, slow; I left early.", 0),
              ('The "twist" was obvious from the start.', 0), ("Great acting,\ngreat music.", 1),
              ("这部电影很好看", 1), ("剧情太差了，浪费时间", 0), ("Loved it, would watch again", 1),
              ("Not worth the ticket, sadly", 0), ("A classic: everyone should see it.", 1), ("Boring, boring, boring.", 0)],
    "test": [("Brilliant from start to end", 1), ("Terrible script", 0), ("很感人", 1), ("不推荐", 0)],
    "unsupervised": [("An unlabelled review.", -1), ("Another one, no label", -1), ("还有一个", -1)],
}


def save_repo(path: Path, extra: dict[str, bytes]) -> None:
    for name, data in extra.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)


def build_resnet(path: Path) -> None:
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                          num_labels=4, downsample_in_first_stage=False)
    model = ResNetForImageClassification(config).eval()
    model.save_pretrained(path)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    save_repo(path, {"preprocessor_config.json": (json.dumps(RESNET_PREPROCESSOR, indent=2) + "\n").encode(),
                     "pytorch_model.bin": buffer.getvalue(), "tf_model.h5": PLACEHOLDER, "onnx/model.onnx": PLACEHOLDER,
                     "README.md": b"# resnet-18 (stand-in)\nA tiny ResNet saved with save_pretrained, for tests.\n",
                     ".gitattributes": LFS_ATTRIBUTES.encode()})


def build_bert(path: Path) -> None:
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(CHINESE), *"abcdefghijklmnopqrstuvwxyz0123456789",
             *".,!?"]
    vocab_file = path.parent / "vocab.tmp"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=False, tokenize_chinese_chars=True)
    vocab_file.unlink()
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertForMaskedLM(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    save_repo(path, {"flax_model.msgpack": PLACEHOLDER, ".gitattributes": LFS_ATTRIBUTES.encode(),
                     "README.md": "# bert-base-chinese (stand-in)\n一个很小的 BERT，用于测试。\n".encode()})


def parquet(path: Path, columns: dict[str, list], features: dict[str, dict]) -> None:
    """One parquet file with the `huggingface` schema metadata (the datasets library's features) the hub's files carry."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns)
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), path)


def build_mnist(path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    features = {"image": {"_type": "Image"}, "label": {"names": [str(d) for d in range(10)], "_type": "ClassLabel"}}
    for split, per_class in (("train", 3), ("test", 1)):
        images, labels = [], []
        for i in range(10 * per_class):
            digit = i % 10
            pixels = (rng.random((28, 28)) * 60).astype("uint8")
            pixels[4 + digit:24 - digit // 2, 6 + digit // 2:22] = 200 + digit * 5  # a bright block whose shape is the class
            buffer = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
            images.append({"bytes": buffer.getvalue(), "path": None})
            labels.append(digit)
        parquet(path / "mnist" / f"{split}-00000-of-00001.parquet", {"image": images, "label": labels}, features)
    save_repo(path, {"README.md": b"# mnist (stand-in)\n", ".gitattributes": LFS_ATTRIBUTES.encode()})


def build_imdb(path: Path) -> None:
    features = {"text": {"dtype": "string", "_type": "Value"}, "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}}
    for split, rows in TEXTS.items():
        parquet(path / "plain_text" / f"{split}-00000-of-00001.parquet",
                {"text": [t for t, _ in rows], "label": [y for _, y in rows]}, features)
    save_repo(path, {"README.md": b"# imdb (stand-in)\n", ".gitattributes": LFS_ATTRIBUTES.encode()})


BUILDERS = {"models/microsoft/resnet-18": build_resnet, "models/google-bert/bert-base-chinese": build_bert,
            "datasets/ylecun/mnist": build_mnist, "datasets/stanfordnlp/imdb": build_imdb}


def main() -> None:
    for rel, build in BUILDERS.items():
        path = ROOT / rel
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        build(path)
        files = sorted(p for p in path.rglob("*") if p.is_file())
        print(f"{rel}: {len(files)} files, {sum(p.stat().st_size for p in files)} bytes")


if __name__ == "__main__":
    main()
