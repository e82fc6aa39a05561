"""A tiny random sentence-transformers encoder (2 layers, width 32, mean-pooled)
with all-MiniLM-L6-v2's real tokenizer: what the retriever trains in tests."""

import shutil
import tempfile
from pathlib import Path

_BUILT = {}   # one per test process


def tiny_encoder(directory=None):
    """The tiny encoder's directory, built in `directory` (by default once per process)."""
    if directory is None:
        if "default" not in _BUILT:
            _BUILT["default"] = tiny_encoder(Path(tempfile.mkdtemp(prefix="faqforge-tiny-encoder-")))
        return _BUILT["default"]
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel

    from faqforge.models.encoders import encoder_directory
    real, directory = encoder_directory("embedded:all-minilm-l6-v2"), Path(directory)
    bert = directory / "bert"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(bert)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(real / name, bert / name)
    encoder = SentenceTransformer(modules=[Transformer(str(bert), max_seq_length=64), Pooling(32, "mean")],
                                  device="cpu")
    encoder.save_pretrained(str(directory / "tiny"))
    return directory / "tiny"
