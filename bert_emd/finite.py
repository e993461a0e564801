"""No NaN or infinite tensor leaves a command: the check used where a model is loaded, trained and saved."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from bert_emd.errors import BertEmdError


class NonFiniteError(BertEmdError):
    """A model, loss or metric holds NaN or inf: the command stops with one line and writes no model."""


def tensors_of(model_or_tensors) -> Mapping[str, torch.Tensor]:
    """A module's state dict, or a mapping of names to tensors as it is."""
    if isinstance(model_or_tensors, torch.nn.Module):
        return model_or_tensors.state_dict()
    return model_or_tensors


def non_finite_names(model_or_tensors) -> list[str]:
    """Names of the floating-point tensors holding a NaN or inf (quantised tensor subclasses are skipped: their
    storage is integers and a scale that their own code checks)."""
    return [name for name, tensor in tensors_of(model_or_tensors).items()
            if type(tensor) is torch.Tensor and tensor.is_floating_point() and not torch.isfinite(tensor).all()]


def describe_non_finite(model_or_tensors) -> str | None:
    """``"NaN or inf in 3 of 41 tensors, e.g. NAME"``, or None when every tensor is finite."""
    tensors = tensors_of(model_or_tensors)
    bad = non_finite_names(tensors)
    if not bad:
        return None
    floating = sum(1 for tensor in tensors.values() if type(tensor) is torch.Tensor and tensor.is_floating_point())
    return f"NaN or inf in {len(bad)} of {floating} tensors, e.g. {bad[0]}"


def refuse_non_finite(model_or_tensors, what: str) -> None:
    """The guard in front of every save: a model with a NaN or inf weight is never written."""
    found = describe_non_finite(model_or_tensors)
    if found:
        raise NonFiniteError(f"refusing to save {what}: {found}; nothing was saved (the run diverged: try a lower "
                             "--learning-rate)")
