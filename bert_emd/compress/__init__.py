"""`bert-emd compress`: a fine-tuned model -> the deepest student that meets a measured speed target, distilled,
exported and reported in one step."""

from bert_emd.compress.config import CompressConfig
from bert_emd.compress.run import compress

__all__ = ["CompressConfig", "compress"]
