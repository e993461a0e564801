"""MS-BERT: exit students on every layer of a fine-tuned model, self-distillation (final or EMD targets)
and early-exit inference with an entropy or top-K uncertainty."""

from bert_emd.early_exit.curve import EarlyExitEvalConfig, evaluate_early_exit
from bert_emd.early_exit.model import EarlyExitModel
from bert_emd.early_exit.train import EarlyExitTrainConfig, train_early_exit
from bert_emd.early_exit.uncertainty import exit_layers, uncertainty

__all__ = ["EarlyExitEvalConfig", "EarlyExitModel", "EarlyExitTrainConfig", "evaluate_early_exit", "exit_layers",
           "train_early_exit", "uncertainty"]
