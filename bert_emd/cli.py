"""The `bert-emd` command: one sub-command per stage, its flags generated from the config dataclass."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bert_emd.errors import BertEmdError
from bert_emd.options import add_options, build_config, load_config_file


def _commands() -> dict[str, tuple[type, Callable, str]]:
    from bert_emd.attack import AttackConfig, attack
    from bert_emd.augment import AugmentConfig, augment
    from bert_emd.compress import CompressConfig, compress
    from bert_emd.deploy import BenchmarkConfig, ExportConfig, QuantizeConfig, benchmark, export, quantize
    from bert_emd.distill import DistillConfig, distill
    from bert_emd.early_exit import EarlyExitEvalConfig, EarlyExitTrainConfig, evaluate_early_exit, train_early_exit
    from bert_emd.evaluation import EvaluateConfig, PredictConfig, evaluate, predict
    from bert_emd.experiment import ExperimentConfig, experiment
    from bert_emd.finetune import FinetuneConfig, finetune
    from bert_emd.general_distill import GeneralDistillConfig, general_distill
    from bert_emd.hybrid import HybridConfig, hybrid
    from bert_emd.theseus import TheseusConfig, theseus

    return {
        "compress": (CompressConfig, compress, "one step from a fine-tuned model to a deployable student: the depth "
                     "chosen from measured speed, augmentation, distillation, export, and a report"),
        "finetune": (FinetuneConfig, finetune, "fine-tune a teacher (any HF encoder) on a task"),
        "augment": (AugmentConfig, augment, "TinyBERT-style augmented training data (word replacement by word "
                    "vectors or a masked LM); labels copied from the originals"),
        "distill": (DistillConfig, distill, "distil a fine-tuned teacher into a smaller student (BERT-EMD)"),
        "general-distill": (GeneralDistillConfig, general_distill, "task-agnostic distillation of a pre-trained "
                            "encoder on plain text (layer terms only, EMD or fixed mapping)"),
        "evaluate": (EvaluateConfig, evaluate, "score a model on a task, optionally against its teacher"),
        "predict": (PredictConfig, predict, "write GLUE submission TSV files for a test split"),
        "export": (ExportConfig, export, "ONNX export (dynamic axes, optional int8) checked against PyTorch"),
        "quantize": (QuantizeConfig, quantize, "dynamic int8 of the Linear layers, with the dev-metric change"),
        "benchmark": (BenchmarkConfig, benchmark, "size and latency of models on every backend, side by side"),
        "early-exit train": (EarlyExitTrainConfig, train_early_exit, "MS-BERT: exit students on every layer of a "
                             "fine-tuned model, trained by self-distillation (final or EMD targets)"),
        "early-exit evaluate": (EarlyExitEvalConfig, evaluate_early_exit, "speed-accuracy curve of an early-exit "
                                "model over uncertainty thresholds (JSON and PNG)"),
        "hybrid": (HybridConfig, hybrid, "LadaBERT: compress a fine-tuned model in place by SVD factorisation, "
                   "magnitude pruning and KD, step by step"),
        "theseus": (TheseusConfig, theseus, "BERT-of-Theseus: replace groups of teacher layers by successor layers, "
                    "batch by batch, with the task loss only"),
        "attack": (AttackConfig, attack, "robustness under a TextFooler-style word-substitution attack, with the "
                   "teacher's on the same examples and the transfer between them"),
        "experiment": (ExperimentConfig, experiment, "results table: teachers, every student method x seed, "
                       "latency, table and plots; finished runs are skipped"),
    }


class OneLineErrors(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``bert-emd finetune: error: ...``, exit code 2) without the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(commands: dict) -> argparse.ArgumentParser:
    """One sub-command per entry; a name with a space ("early-exit train") is a sub-command of a group."""
    parser = OneLineErrors(prog="bert-emd", description="Compress fine-tuned BERT-style models: "
                                     "BERT-EMD distillation, evaluation and deployment measures.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineErrors)
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (config_class, _, help_text) in commands.items():
        group, _, action = name.partition(" ")
        if action:
            if group not in groups:
                actions = [other.partition(" ")[2] for other in commands if other.startswith(group + " ")]
                holder = sub.add_parser(group, help=f"{group}: {', '.join(actions)}")
                groups[group] = holder.add_subparsers(dest="action", required=True, metavar="ACTION",
                                                      parser_class=OneLineErrors)
            command = groups[group].add_parser(action, help=help_text, description=help_text)
        else:
            command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--config", help="YAML or JSON file of options; flags given here override it")
        add_options(command, config_class)
    return parser


def main(argv: list[str] | None = None) -> int:
    commands = _commands()
    args = vars(build_parser(commands).parse_args(argv))
    # Weight-loading and shard-writing bars of transformers are noise on a terminal (and would precede a
    # one-line error); the Trainer's own training and evaluation bars are separate and stay.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    name = args.pop("command")
    if "action" in args:
        name = f"{name} {args.pop('action')}"
    config_file = args.pop("config", None)
    config_class, run, _ = commands[name]
    try:
        values = load_config_file(config_file) if config_file else {}
        values.update(args)  # CLI flags override the file
        run(build_config(config_class, values, source=config_file or "options"))
    except BertEmdError as error:
        print(f"bert-emd {name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bert-emd {name}: interrupted; run the same command again to resume from the last checkpoint",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
