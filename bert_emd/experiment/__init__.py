"""Results tables: one teacher per task, every student method x seed with the same budget, table and plots."""

from bert_emd.experiment.config import ExperimentConfig
from bert_emd.experiment.runner import experiment

__all__ = ["ExperimentConfig", "experiment"]
