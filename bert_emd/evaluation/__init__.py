"""Scoring models: task metrics, loyalty to a teacher, evaluation and GLUE submission files."""

from bert_emd.evaluation.evaluate import EvaluateConfig, evaluate, evaluate_models, predict_logits
from bert_emd.evaluation.metrics import compute_metrics, loyalty
from bert_emd.evaluation.predict import PredictConfig, predict

__all__ = ["EvaluateConfig", "PredictConfig", "compute_metrics", "evaluate", "evaluate_models", "loyalty",
           "predict", "predict_logits"]
