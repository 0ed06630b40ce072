"""Tiny random-weight transformers models, built from a config and saved with
save_pretrained, for loading by path through the analyzers' own code. No downloads."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

AUDIOSET_LABELS = ["Speech", "Music", "Silence", "Siren", "Dog", "Vehicle"]


def tiny_ast(path: Path) -> Path:
    config = transformers.ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_length=200,  # 2 s of 10 ms frames
        num_mel_bins=128,
        id2label=dict(enumerate(AUDIOSET_LABELS)),
        label2id={label: i for i, label in enumerate(AUDIOSET_LABELS)},
    )
    torch.manual_seed(0)
    transformers.ASTForAudioClassification(config).save_pretrained(path)
    transformers.ASTFeatureExtractor(max_length=200).save_pretrained(path)
    return path


def _byte_vocab() -> dict[str, int]:
    """GPT-2's byte-to-unicode alphabet: every byte is one token, no merges."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {chars[b]: b for b in range(256)}


SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
]


def tiny_whisper(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    vocab = _byte_vocab()
    vocab["<|endoftext|>"] = len(vocab)
    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    tokenizer = transformers.WhisperTokenizer(vocab=vocab, merges=[], pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS[1:]})
    tokenizer.add_tokens(timestamps)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    config = transformers.WhisperConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        num_mel_bins=80,
        max_target_positions=128,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(config)
    generation = transformers.GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        is_multilingual=True,
        lang_to_id={"<|en|>": ids["<|en|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        max_initial_timestamp_index=50,
    )
    model.generation_config = generation
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    transformers.WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    return path
