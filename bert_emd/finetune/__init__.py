"""Fine-tuning a teacher (any Hugging Face encoder) on a task with the transformers Trainer."""

from bert_emd.finetune.run import FinetuneConfig, finetune

__all__ = ["FinetuneConfig", "finetune"]
