"""The transformers ``Trainer`` that every training command uses, with two guards: each step's loss goes to the
divergence stop (``guard.NonFiniteGuard``), and nothing with a NaN or inf weight is saved (model or checkpoint)."""

from __future__ import annotations

from transformers import Trainer

from bert_emd.finite import refuse_non_finite
from bert_emd.training.guard import NonFiniteGuard


class GuardedTrainer(Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # a command that builds its own callback list still gets both guards, last
        from bert_emd.training.checkpoints import MarkCompleteCheckpoints

        for needed in (NonFiniteGuard, MarkCompleteCheckpoints):
            if not any(isinstance(callback, needed) for callback in self.callback_handler.callbacks):
                self.add_callback(needed())

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        guard = self._non_finite_guard()
        if guard is not None:
            guard.observe(loss, self.state.global_step + 1)  # the optimiser step this micro-batch belongs to
        return loss

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if self.args.should_save:
            refuse_non_finite(state_dict if state_dict is not None else self.model,
                              f"the model to {output_dir or self.args.output_dir}")
        super()._save(output_dir, state_dict)

    def _non_finite_guard(self) -> NonFiniteGuard | None:
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, NonFiniteGuard):
                return callback
        return None
