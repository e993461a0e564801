"""Saving and loading a hybrid-compressed model in a format that really takes less space.

A directory holds the standard ``config.json`` and tokenizer files, ``hybrid.json`` (which Linear
layers are low-rank pairs, at which rank; which weights are sparse) and ``hybrid.safetensors``:
dense tensors as they are, and each sparse weight as its non-zero values (``NAME::values``, in
row-major order) plus a bit mask packed 8 entries per byte (``NAME::mask``). At sparsity s a
float32 weight then takes ``4 (1 - s) + 1/8`` bytes per entry instead of 4.
Factorised layers are pairs of standard ``nn.Linear`` (``down``, ``up``), rebuilt on loading.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bert_emd.errors import BertEmdError
from bert_emd.finite import refuse_non_finite
from bert_emd.hybrid.lowrank import LowRankLinear, as_dense, replace_module
from bert_emd.hybrid.pruning import detach_pruned_weights, make_permanent

MANIFEST = "hybrid.json"
WEIGHTS = "hybrid.safetensors"
DENSE_COPY = "dense"  # a standard transformers copy beside the compact form


def is_hybrid(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def save_hybrid(model: nn.Module, directory: str | Path, tokenizer=None, sparse_min: float = 0.1,
                extra: dict | None = None) -> Path:
    """Write ``model`` (pruning made permanent on a copy) to ``directory``; weights with at least
    ``sparse_min`` zeros are stored sparse."""
    directory = Path(directory)
    detach_pruned_weights(model)
    model = copy.deepcopy(model)
    make_permanent(model)
    refuse_non_finite(model, f"the hybrid model to {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    factorised = {name: module.rank for name, module in model.named_modules() if isinstance(module, LowRankLinear)}
    tensors, sparse = {}, {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        zeros = 1.0 - torch.count_nonzero(tensor).item() / max(tensor.numel(), 1)
        if name.endswith("weight") and tensor.dim() == 2 and zeros >= sparse_min:
            mask = tensor != 0
            tensors[f"{name}::values"] = tensor[mask].contiguous()
            tensors[f"{name}::mask"] = torch.from_numpy(np.packbits(mask.numpy().reshape(-1)))
            sparse[name] = list(tensor.shape)
        else:
            tensors[name] = tensor
    model.config.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    save_file(tensors, directory / WEIGHTS)
    (directory / MANIFEST).write_text(json.dumps({"format": 1, "factorised": factorised, "sparse": sparse,
                                                  **(extra or {})}, indent=2) + "\n")
    return directory / WEIGHTS


def save_dense_copy(model: nn.Module, directory: str | Path, tokenizer=None) -> Path:
    """The same model as a standard transformers directory (low-rank pairs multiplied out, pruned weights as
    zeros): what plain ``AutoModelForSequenceClassification.from_pretrained`` loads. As large as the teacher;
    the compact form beside it is what holds the size gain."""
    directory = Path(directory)
    detach_pruned_weights(model)
    model = copy.deepcopy(model)
    make_permanent(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, LowRankLinear):
            weight, bias = as_dense(module)
            dense = nn.Linear(module.in_features, module.out_features, bias=bias is not None)
            with torch.no_grad():
                dense.weight.copy_(weight)
                if bias is not None:
                    dense.bias.copy_(bias)
            replace_module(model, name, dense)
    refuse_non_finite(model, f"the dense copy to {directory}")
    model.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    return directory


def load_hybrid(directory: str | Path, **kwargs) -> nn.Module:
    """Rebuild the model: the config's architecture, low-rank pairs where listed, sparse weights unpacked."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    if manifest.get("format") != 1:
        raise BertEmdError(f"{directory}/{MANIFEST}: unknown format {manifest.get('format')!r}")
    config = AutoConfig.from_pretrained(directory, **{k: v for k, v in kwargs.items() if k == "attn_implementation"})
    model = AutoModelForSequenceClassification.from_config(config)
    for name, rank in manifest["factorised"].items():
        dense = model.get_submodule(name)
        replace_module(model, name, LowRankLinear(dense.in_features, dense.out_features, rank, dense.bias is not None))
    stored = load_file(directory / WEIGHTS)
    state = {name: tensor for name, tensor in stored.items() if "::" not in name}
    for name, shape in manifest["sparse"].items():
        values, packed = stored[f"{name}::values"], stored[f"{name}::mask"].numpy()
        count = int(np.prod(shape))
        mask = torch.from_numpy(np.unpackbits(packed)[:count].astype(bool)).reshape(shape)
        weight = torch.zeros(shape, dtype=values.dtype)
        weight[mask] = values
        state[name] = weight
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("position_ids")]
    if missing or unexpected:
        raise BertEmdError(f"{directory}: stored weights do not match the architecture (missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]})")
    return model.eval()
