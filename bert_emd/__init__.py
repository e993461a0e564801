"""bert-emd: compress fine-tuned BERT-style models (BERT-EMD many-to-many layer distillation and friends)."""

from bert_emd import quiet

quiet.install()  # before transformers is imported below

from bert_emd.api import python_api  # noqa: E402
from bert_emd.attack import AttackConfig, attack  # noqa: E402
from bert_emd.augment import AugmentConfig, augment  # noqa: E402
from bert_emd.compress import CompressConfig, compress  # noqa: E402
from bert_emd.deploy import BenchmarkConfig, ExportConfig, QuantizeConfig, benchmark, export, quantize  # noqa: E402
from bert_emd.distill import DistillConfig, distill  # noqa: E402
from bert_emd.early_exit import (  # noqa: E402
    EarlyExitEvalConfig,
    EarlyExitModel,
    EarlyExitTrainConfig,
    evaluate_early_exit,
    train_early_exit,
)
from bert_emd.errors import BertEmdError  # noqa: E402
from bert_emd.evaluation import EvaluateConfig, PredictConfig, evaluate, predict  # noqa: E402
from bert_emd.experiment import ExperimentConfig, experiment  # noqa: E402
from bert_emd.finetune import FinetuneConfig, finetune  # noqa: E402
from bert_emd.general_distill import GeneralDistillConfig, general_distill  # noqa: E402
from bert_emd.hybrid import HybridConfig, hybrid  # noqa: E402
from bert_emd.theseus import TheseusConfig, theseus  # noqa: E402

# the command functions, whose errors name keyword arguments instead of flags
attack = python_api(attack, AttackConfig)
augment = python_api(augment, AugmentConfig)
compress = python_api(compress, CompressConfig)
benchmark = python_api(benchmark, BenchmarkConfig)
export = python_api(export, ExportConfig)
quantize = python_api(quantize, QuantizeConfig)
distill = python_api(distill, DistillConfig)
evaluate_early_exit = python_api(evaluate_early_exit, EarlyExitEvalConfig)
train_early_exit = python_api(train_early_exit, EarlyExitTrainConfig)
evaluate = python_api(evaluate, EvaluateConfig)
predict = python_api(predict, PredictConfig)
experiment = python_api(experiment, ExperimentConfig)
finetune = python_api(finetune, FinetuneConfig)
general_distill = python_api(general_distill, GeneralDistillConfig)
hybrid = python_api(hybrid, HybridConfig)
theseus = python_api(theseus, TheseusConfig)

__version__ = "0.1.0"

__all__ = ["AttackConfig", "AugmentConfig", "BenchmarkConfig", "BertEmdError", "CompressConfig", "DistillConfig",
           "EarlyExitModel", "EvaluateConfig", "ExperimentConfig", "ExportConfig", "FinetuneConfig",
           "GeneralDistillConfig", "HybridConfig", "PredictConfig", "QuantizeConfig", "TheseusConfig", "attack",
           "augment", "benchmark", "compress", "distill", "evaluate", "evaluate_early_exit", "experiment", "export",
           "finetune", "general_distill", "hybrid", "predict", "quantize", "theseus", "train_early_exit"]
