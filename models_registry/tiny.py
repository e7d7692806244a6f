"""Tiny randomly initialised models built from a config, with a tokenizer trained on the
project's own texts (the ``tokenizers`` library): for the demo and the tests, which then
train in seconds and never need a download.

- ``encoder``: a BERT (2 layers, hidden 32) with a WordPiece tokenizer — a reward backbone;
- ``causal_lm``: a GPT-2 (2 layers, hidden 32) with a byte-level BPE tokenizer — for DPO.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

ARCHITECTURES = ("encoder", "causal_lm")
MAX_POSITIONS = 512


def _wordpiece(texts: list[str], vocab_size: int):
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tokenizer.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=MAX_POSITIONS,
    )  # fmt: skip


def _byte_level_bpe(texts: list[str], vocab_size: int):
    from transformers import PreTrainedTokenizerFast

    end = "<|endoftext|>"
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[end],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=end, eos_token=end, unk_token=end, pad_token=end,
        model_max_length=MAX_POSITIONS,
    )  # fmt: skip


def tiny_model_build(
    *, architecture: str, texts: list[str], directory: Path, vocab_size: int = 2000, seed: int = 0
) -> dict:
    """Write a tiny model and its tokenizer into ``directory``; returns a config summary."""
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture: must be one of {', '.join(ARCHITECTURES)}")
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("texts: a tokenizer needs some text to learn from")
    torch.manual_seed(seed)
    if architecture == "encoder":
        tokenizer = _wordpiece(texts, vocab_size)
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, max_position_embeddings=MAX_POSITIONS,
            pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
        model = BertModel(config)
    else:
        tokenizer = _byte_level_bpe(texts, vocab_size)
        end = tokenizer.eos_token_id
        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=MAX_POSITIONS, n_embd=32, n_layer=2,
            n_head=2, bos_token_id=end, eos_token_id=end, pad_token_id=end,
        )  # fmt: skip
        model = GPT2LMHeadModel(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
    return {
        "model_type": config.model_type,
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokenizer_texts": len(texts),
    }
