"""Options of `bert-emd compress`: what to compress, the speed target and where it is measured, the recipe."""

from __future__ import annotations

from dataclasses import dataclass

from bert_emd.data.loading import DataOptions
from bert_emd.distill.emd import MAPPINGS
from bert_emd.options import option

METHODS = (*MAPPINGS, "theseus", "hybrid", "early-exit", "auto")
BACKENDS = ("auto", "torch-fp32", "onnx-fp32", "onnx-int8")
BASELINES = ("teacher-torch-fp32", "teacher-same-backend")


@dataclass
class CompressConfig(DataOptions):
    teacher: str | None = option(None, "fine-tuned teacher directory (a `bert-emd finetune` output); or give --model")
    model: str | None = option(None, "pre-trained model to fine-tune into the teacher first (e.g. minilm-l6), "
                               "instead of --teacher")
    output: str | None = option(None, "output directory: teacher, student, ONNX files and the report (required)")
    overwrite: bool = option(False, "replace a finished output of another command or task in --output")
    # the speed target, measured where the student will run
    target_speedup: float | None = option(None, "how many times faster than --baseline the student must run "
                                          "(measured; give this or --target-latency-ms)", above=1)
    target_latency_ms: float | None = option(None, "the student's p50 latency limit at the deployment shape, in "
                                             "milliseconds (instead of --target-speedup)", above=0)
    backend: str = option("auto", "where the student will run and is measured: torch-fp32, onnx-fp32 or "
                          "onnx-int8 (ONNX Runtime dynamic int8); auto: onnx-int8 when the deploy extra is "
                          "installed, else torch-fp32", choices=BACKENDS)
    baseline: str = option("teacher-torch-fp32", "what the speedup is against: the teacher in PyTorch fp32 (what "
                           "runs today) or the teacher on the same backend", choices=BASELINES)
    batch_size_deploy: int = option(32, "deployment batch size of the latency measurement", at_least=1)
    length_deploy: int = option(128, "deployment sequence length of the latency measurement", at_least=1)
    threads: int = option(2, "CPU threads for every latency measurement", at_least=1)
    latency_repeats: int = option(5, "timed forward passes per model and backend", at_least=1)
    # the recipe
    method: str = option("emd", "how the student is trained: a layer mapping of `bert-emd distill` (emd, skip, "
                         "last, none), theseus (`bert-emd theseus`, at the deepest depth that divides the teacher's "
                         "layers and meets the target), hybrid (`bert-emd hybrid`: LadaBERT pruning and factorisation "
                         "at the lowest measured ratio that meets the target), early-exit (MS-BERT exits on the "
                         "teacher, the threshold chosen on dev to meet the target, measured in PyTorch), or auto (emd, "
                         "theseus, hybrid and, for classification, early exit; the best deployed dev score that meets "
                         "the target kept)",
                         choices=METHODS)
    augment: str = option("auto", "augmented training data (TinyBERT-style word replacement): on, off, or auto "
                          "(on for training sets under 10,000 examples)", choices=("auto", "on", "off"))
    num_augmented: int = option(10, "new examples drawn per training example when augmenting", at_least=1)
    accuracy_budget: float | None = option(None, "the most the student may lose against the teacher, in points "
                                           "(x 100) of the task's mean metric; the report says whether it holds",
                                           at_least=0)
    epochs: float | None = option(None, "distillation epochs (default: 1 over augmented data, else 3)", above=0)
    learning_rate: float | None = option(None, "distillation learning rate (default: the task's recipe)", above=0)
    batch_size: int = option(32, "distillation batch size", at_least=1)
    eval_steps: int = option(50, "evaluate the student on dev every N steps and keep the best", at_least=1)
    seed: int = option(42, "random seed of the fine-tuning, augmentation and distillation", at_least=0,
                       at_most=2**32 - 1)
    max_length: int = option(64, "maximum tokens per training and dev example (the recipe's 64; the latency is "
                             "measured at --length-deploy)", at_least=1)
    records_dir: str | None = option(None, "also copy the report and every stage's records (configs, scores, "
                                     "model card; no weights) to this folder, e.g. to commit them")
    dry_run: bool = option(False, "measure the candidates and the step rate, print the plan and its estimated time, "
                           "train nothing")
