"""Tiny random-weight transformers models built from a config and saved with
save_pretrained, as an operator's local model directory would be. No downloads."""

from __future__ import annotations

import json
from pathlib import Path

PREPROCESSOR = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
# The text and vision towers of the tiny CLIP and SigLIP.
TEXT = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
}
VISION = {**TEXT, "image_size": 32, "patch_size": 8}
LABELS = {0: "person", 1: "car", 2: "dog"}  # of the tiny detectors


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
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
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
        **TEXT,
        "vocab_size": len(vocab),
        "max_position_embeddings": 32,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
    }
    CLIPModel(CLIPConfig(text_config=text, vision_config=VISION, projection_dim=8)).save_pretrained(
        path
    )
    _preprocessor(path, crop_size={"height": 32, "width": 32})
    return path


def tiny_rtdetr(path: Path) -> Path:
    """RT-DETR: focal-loss scores (a sigmoid per class), pixels not normalized."""
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrResNetConfig

    backbone = RTDetrResNetConfig(
        embedding_size=8,
        hidden_sizes=[8, 16, 16, 16],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_indices=[2, 3, 4],
    )
    config = RTDetrConfig(
        backbone_config=backbone,
        encoder_in_channels=[16, 16, 16],
        encoder_hidden_dim=16,
        encoder_ffn_dim=16,
        encoder_attention_heads=2,
        d_model=16,
        decoder_in_channels=[16, 16, 16],
        decoder_ffn_dim=16,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_n_points=1,
        num_queries=10,
        num_denoising=0,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    RTDetrForObjectDetection(config).save_pretrained(path)
    # As RT-DETR's own processor config: rescale only, no mean and std.
    (path / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "RTDetrImageProcessor",
                "do_normalize": False,
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "size": {"height": 96, "width": 96},
            }
        )
    )
    return path


def tiny_yolos(path: Path) -> Path:
    """YOLOS: softmax with a "no object" class like DETR; a ViT, any input size."""
    from transformers import YolosConfig, YolosForObjectDetection

    config = YolosConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=[64, 96],
        patch_size=16,
        num_detection_tokens=10,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    YolosForObjectDetection(config).save_pretrained(path)
    # As YOLOS's processor config: a shortest/longest edge, so the frame keeps its size.
    _preprocessor(path, size={"shortest_edge": 800, "longest_edge": 1333})
    return path


def tiny_siglip(path: Path) -> Path:
    """SigLIP with a fast tokenizer built with the tokenizers library: SigLIP's own
    tokenizer class needs a trained spiece.model (save_sentencepiece_tokenizer below).
    Like SigLIP's: a unigram model over Metaspace pieces, "</s>" appended and padded
    with; prompts padded to the text model's 16 positions."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipModel

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(ch, -3.0) for ch in "abcdefghijklmnopqrstuvwxyz."]
    pieces += [("\u2581" + word, -1.0) for word in ("a", "photo", "of", "person", "car", "room")]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=16,
        pad_token="</s>",
        eos_token="</s>",
        unk_token="<unk>",
    ).save_pretrained(path)
    ids = {"pad_token_id": 1, "bos_token_id": 1, "eos_token_id": 1}
    text = {**TEXT, "vocab_size": len(pieces), "max_position_embeddings": 16, **ids}
    SiglipModel(SiglipConfig(text_config=text, vision_config=VISION)).save_pretrained(path)
    # As SigLIP's processor config: the frame is squashed to the size, not cropped.
    _preprocessor(
        path, image_processor_type="SiglipImageProcessor", size={"height": 32, "width": 32}
    )
    return path


def save_sentencepiece_tokenizer(path: Path, vocab_size: int) -> None:
    """SigLIP's own tokenizer (SiglipTokenizer: SentencePiece, "</s>" appended and padded
    with), its spiece.model trained here on a few words, saved into `path`."""
    import io

    import sentencepiece as spm
    from transformers import SiglipTokenizer

    words = [
        "a",
        "photo",
        "of",
        "a",
        "person",
        "car",
        "room",
        "standing",
        "by",
        "the",
        "parked",
        "in",
        "rain",
        "dog",
        "cat",
    ]
    sentences = [" ".join(words[i:] + words[:i]) for i in range(len(words))] * 5
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    spiece = path / "spiece.model"
    spiece.write_bytes(model.getvalue())
    SiglipTokenizer(vocab_file=str(spiece), model_max_length=16).save_pretrained(path)
