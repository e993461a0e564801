"""Divergence stop that does not depend on the logging interval.

Every optimiser step's loss is checked (``GuardedTrainer.training_step`` hands it to ``NonFiniteGuard.observe``).
On a CPU the check is a comparison of one number per step. On an accelerator the step results are folded into
one flag on the device and the flag is read only where the Trainer reads something anyway: at logging,
evaluation and checkpoint steps, at each epoch end and at the last step. Under DDP the ranks agree on the
flag (one all-reduce at each of those points) so that they stop together. The first non-finite step stops
training before anything of it is saved or evaluated; ``train_resuming`` then removes the run's checkpoints and
raises ``NonFiniteError``. Logged gradient norms and loss terms are checked too.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from transformers import TrainerCallback


class NonFiniteGuard(TrainerCallback):
    """Put it last among the callbacks, so that it can cancel a save or evaluation that others asked for."""

    def __init__(self, deferred: bool | None = None):
        """``deferred``: fold step results into a device flag read only at the Trainer's own sync points (None:
        so on accelerators, a check per step on a CPU)."""
        self.deferred = deferred
        self.failure: str | None = None
        self._pending: torch.Tensor | None = None  # a device flag (accelerators) not yet read
        self._first_bad_step: int | None = None  # known at once on a CPU
        self._last_checked_step = 0

    # called by GuardedTrainer.training_step, once per micro-batch
    def observe(self, loss: torch.Tensor, step: int) -> None:
        if self.failure is not None or self._first_bad_step is not None:
            return
        loss = loss.detach()
        if self.deferred is None:
            self.deferred = loss.device.type != "cpu"
        if not self.deferred:
            if not torch.isfinite(loss).all():
                self._first_bad_step = step
            return
        bad = ~torch.isfinite(loss).all()
        self._pending = bad if self._pending is None else self._pending | bad

    def _read(self, state, model) -> None:
        """Turn what was observed into a failure (a host sync on accelerators, a collective under DDP)."""
        bad = self._first_bad_step is not None or bool(self._pending is not None and self._pending.item())
        self._pending = None
        if dist.is_available() and dist.is_initialized():
            flag = torch.tensor([1.0 if bad else 0.0], device=_collective_device())
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            bad = bool(flag.item())
        if bad:
            step = self._first_bad_step
            where = f"at step {step}" if step is not None else \
                f"between steps {self._last_checked_step + 1} and {state.global_step}"
            terms = _non_finite_terms(model)
            self.failure = f"the training loss became non-finite {where}" + (f" ({', '.join(terms)})" if terms else "")
        self._last_checked_step = state.global_step

    def _check(self, state, control, model, always: bool) -> None:
        if self.failure is None:
            reads_anyway = control.should_log or control.should_save or control.should_evaluate or \
                state.global_step >= state.max_steps
            if always or reads_anyway or self._pending is None:
                self._read(state, model)
        if self.failure is not None:
            control.should_training_stop = True
            control.should_epoch_stop = True
            control.should_save = False
            control.should_evaluate = False
            control.should_log = False

    def on_step_end(self, args, state, control, model=None, **kwargs):
        # the CPU path has no pending device flag: it is read (a Python check) every step
        self._check(state, control, model, always=False)
        return control

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self._check(state, control, model, always=True)
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._check(state, control, model, always=True)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.failure is not None or not logs:
            return control
        # fp16's loss scaler meets infinite gradients on purpose (it skips those steps): only the loss counts there
        watched = ("loss",) if args.fp16 else ("loss", "grad_norm")
        bad = [name for name, value in logs.items() if (name in watched or name.startswith("loss_"))
               and isinstance(value, (int, float)) and not math.isfinite(value)]
        if bad:
            terms = [name for name in bad if name.startswith("loss_")] or bad
            self.failure = f"the training loss or gradient became non-finite by step {state.global_step} " \
                           f"({', '.join(terms)})"
            control.should_training_stop = True
            control.should_save = False
            control.should_evaluate = False
        return control


def _collective_device():
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _non_finite_terms(model) -> list[str]:
    """The loss terms of the failing step that were not finite, where the trained module records them."""
    module = getattr(model, "module", model)  # DDP wraps the module
    named = getattr(module, "non_finite_terms", None)
    return named() if callable(named) else []
