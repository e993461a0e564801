"""bert-emd: compress fine-tuned BERT-style models (BERT-EMD many-to-many layer distillation and friends)."""

from bert_emd import quiet

quiet.install()  # before transformers is imported below

from bert_emd.deploy import BenchmarkConfig, ExportConfig, QuantizeConfig, benchmark, export, quantize  # noqa: E402
from bert_emd.distill import DistillConfig, distill  # noqa: E402
from bert_emd.errors import BertEmdError  # noqa: E402
from bert_emd.evaluation import EvaluateConfig, PredictConfig, evaluate, predict  # noqa: E402
from bert_emd.finetune import FinetuneConfig, finetune  # noqa: E402

__version__ = "0.1.0"

__all__ = ["BenchmarkConfig", "BertEmdError", "DistillConfig", "EvaluateConfig", "ExportConfig", "FinetuneConfig",
           "PredictConfig", "QuantizeConfig", "benchmark", "distill", "evaluate", "export", "finetune", "predict",
           "quantize"]
