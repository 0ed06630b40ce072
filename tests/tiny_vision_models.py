"""Tiny random-weight transformers models built from a config and saved with
save_pretrained, as an operator's local model directory would be. No downloads."""

from __future__ import annotations

import json
from pathlib import Path

PREPROCESSOR = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}


def _preprocessor(path: Path, **extra: object) -> None:
    (path / "preprocessor_config.json").write_text(json.dumps({**PREPROCESSOR, **extra}))


def tiny_detr(path: Path) -> Path:
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    backbone = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1], out_features=["stage4"]
    )
    config = DetrConfig(
        use_timm_backbone=False,
        use_pretrained_backbone=False,
        backbone_config=backbone,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        num_queries=10,
        id2label={0: "person", 1: "car", 2: "dog"},
        label2id={"person": 0, "car": 1, "dog": 2},
    )
    DetrForObjectDetection(config).save_pretrained(path)
    _preprocessor(path, size={"height": 96, "width": 160})
    return path


def tiny_vit(path: Path) -> Path:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "indoor", 1: "outdoor", 2: "night", 3: "empty"},
        label2id={"indoor": 0, "outdoor": 1, "night": 2, "empty": 3},
    )
    ViTForImageClassification(config).save_pretrained(path)
    _preprocessor(path, size={"height": 32, "width": 32})
    return path


def tiny_clip(path: Path) -> Path:
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    path.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz.":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(
        vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt")
    ).save_pretrained(path)
    text = {
        "vocab_size": len(vocab),
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 32,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
    }
    vision = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(
        path
    )
    _preprocessor(path, crop_size={"height": 32, "width": 32})
    return path
