"""`bert-emd quantize`: dynamic int8 of the Linear layers, and the dev-metric change it causes.

Two ways to make the int8 model, both used by ``bert-emd benchmark``:
- ``torchao`` (default, PyTorch's current path): ``Int8DynamicActivationInt8WeightConfig`` applied by
  transformers' ``TorchAoConfig`` on load, so the result saves with ``save_pretrained`` and reloads with
  plain ``from_pretrained`` (torchao installed);
- ``legacy``: ``torch.ao.quantization.quantize_dynamic`` (fbgemm kernels). Deprecated by PyTorch, but on
  x86 CPUs it is the int8 path that runs faster than fp32; it is measured only, never saved.
"""

from __future__ import annotations

import copy
import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from bert_emd.data.loading import DataOptions, resolve_task
from bert_emd.errors import BertEmdError
from bert_emd.evaluation.evaluate import evaluate_models, format_results
from bert_emd.finite import refuse_non_finite
from bert_emd.models import (
    check_classifier,
    check_labels_match,
    label_names_of,
    load_config,
    load_pretrained,
    load_tokenizer,
)
from bert_emd.options import option, resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import run_record, write_json


@dataclass
class QuantizeConfig(DataOptions):
    model: str | None = option(None, "fine-tuned model directory to quantise (required)")
    output: str | None = option(None, "directory for the int8 model, tokenizer and results (required)")
    overwrite: bool = option(False, "replace a finished output of another command or task in --output (default: "
                                    "refused; the same command and task resumes there)")
    split: str = option("dev", "split on which fp32 and int8 are both scored (with --task or your files)")
    batch_size: int = option(64, "evaluation batch size", at_least=1)


def require_torchao():
    try:
        return importlib.import_module("torchao")
    except ImportError:
        raise BertEmdError("int8 quantisation needs the optional package torchao: pip install 'bert-emd[deploy]'") \
            from None


def load_int8(name: str):
    """The classifier with int8 Linear layers (torchao), loaded through transformers."""
    require_torchao()
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig
    from transformers import TorchAoConfig

    from bert_emd.distill.student import head_class_of_config

    auto_class = head_class_of_config(load_config(name))
    if auto_class is AutoModelForSequenceClassification:
        check_classifier(name)
    return load_pretrained(auto_class, name, "a model",
                           quantization_config=TorchAoConfig(Int8DynamicActivationInt8WeightConfig())).eval()


def legacy_int8(model):
    """``torch.ao.quantization.quantize_dynamic`` of every Linear layer (deprecated API, fast fbgemm kernels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear},
                                                      dtype=torch.qint8)


@writes_output("quantize", QuantizeConfig)
def quantize(config: QuantizeConfig | str | dict | None = None, **overrides) -> dict:
    """Write the int8 model and, when task data is given, fp32 and int8 metrics side by side."""
    config = resolve_config(QuantizeConfig, config, overrides)
    if not config.model or not config.output:
        raise BertEmdError("--model and --output are required")
    from bert_emd.deploy.export import load_exportable

    fp32, kind = load_exportable(config.model)  # refuses non-finite weights before they are quantised
    model = load_int8(config.model)
    tokenizer = load_tokenizer(config.model, config.max_length)
    output = Path(config.output)
    refuse_non_finite(model, f"the int8 model to {output}")
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    results = {"model": config.model, "method": "torchao Int8DynamicActivationInt8WeightConfig"}
    if config.task or config.uses_own_files:
        task = resolve_task(config, model_labels=label_names_of(load_config(config.model)))
        scored = _score(task, kind, config, model, fp32, tokenizer)
        results.update(task=task.name, main_metric=task.main_metric, splits={})
        for split, entry in scored.items():  # "teacher" here is the fp32 original
            change = {name: value - entry["teacher_metrics"][name] for name, value in entry["metrics"].items()
                      if isinstance(value, float)}
            results["splits"][split] = {"num_examples": entry["num_examples"], "int8": entry["metrics"],
                                        "fp32": entry["teacher_metrics"], "change": change,
                                        "agreement_with_fp32": entry["loyalty"]}
        for split, entry in results["splits"].items():
            print(f"  {split}: int8 - fp32 = " + "  ".join(f"{k} {v:+.4f}" for k, v in entry["change"].items()))
    write_json(output / "eval_results.json", results)
    write_json(output / "run_config.json", run_record("quantize", config))
    print(f"int8 model written to {output} (reload: {type(model).__name__}.from_pretrained, torchao installed)")
    return results


def _score(task, kind: str, config: QuantizeConfig, model, fp32, tokenizer) -> dict:
    """The int8 model's scores on the split, the fp32 one as its "teacher" (agreement = loyalty)."""
    if task.kind != kind:
        raise BertEmdError(f"--task {config.task}: a {task.kind} task, but '{config.model}' is a {kind} model")
    if kind == "token":
        from bert_emd.tokens.run import format_token_results, score_tokens

        entry = score_tokens(task, config, config.split, model, tokenizer, fp32, config.batch_size)
        print(format_token_results(task, config.split, entry))
        return {config.split: entry}
    if kind == "span":
        from bert_emd.spans.run import format_span_results, score_spans

        entry = score_spans(task, config, config.split, model, tokenizer, fp32, config.batch_size)
        print(format_span_results(task, config.split, entry))
        return {config.split: entry}
    check_labels_match(fp32.config, task, "model", config.model)
    scored = evaluate_models(task, config, config.split, model, tokenizer, fp32, tokenizer, config.batch_size)
    print(format_results(task, scored, reference="fp32"))
    return scored
