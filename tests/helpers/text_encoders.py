"""Tiny stand-ins for the text family's pretrained encoders, saved as `nox -s fetch_weights` leaves them.

Run with a generated text project's venv (it needs transformers and tokenizers, which the test
interpreter does not have):

    .venvs/debug-cpu/bin/python tests/helpers/text_encoders.py OUT data/mini/train.csv

writes OUT/distilbert/, OUT/bert_chinese/ and OUT/mdistilbert/: a 2-layer, 32-wide model of the real
model type (config.json, model.safetensors) and a WordPiece tokenizer trained on the CSV's texts plus
[PAD] [UNK] [CLS] [SEP] [MASK] (tokenizer.json, tokenizer_config.json), both with `save_pretrained`.
distilbert is uncased, the other two cased, as on the hub. bert_chinese is saved with a 2-label
classification head, so a test can tell the head trained while the frozen encoder did not;
the DistilBERTs are saved as masked-LM models, like the hub's, so their head is new at loading.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MODELS = {"distilbert": ("distilbert", True), "bert_chinese": ("bert", False), "mdistilbert": ("distilbert", False)}


def tokenizer(texts: list[str], lowercase: bool):
    """A BERT-style fast tokenizer (normaliser, CJK characters split, WordPiece, [CLS] $A [SEP]) trained on `texts`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=SPECIAL))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def model(model_type: str, vocab_size: int):
    import torch
    from transformers import BertConfig, BertForSequenceClassification, DistilBertConfig, DistilBertForMaskedLM

    torch.manual_seed(0)
    if model_type == "bert":
        return BertForSequenceClassification(BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                                                        num_attention_heads=2, intermediate_size=64,
                                                        max_position_embeddings=128, num_labels=2))
    return DistilBertForMaskedLM(DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                  max_position_embeddings=128))


def main(out: Path, train_csv: Path) -> None:
    with train_csv.open(encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    for key, (model_type, lowercase) in MODELS.items():
        tok = tokenizer(texts, lowercase)
        tok.save_pretrained(out / key)
        model(model_type, len(tok)).save_pretrained(out / key)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
