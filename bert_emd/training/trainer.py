"""The transformers ``Trainer`` that every training command uses, with two guards: each step's loss goes to the
divergence stop (``guard.NonFiniteGuard``), and nothing with a NaN or inf weight is saved (model or checkpoint).

A trained module that holds a frozen model it never changes (the Distiller's teacher) names it in
``checkpoint_excludes`` (key prefixes): checkpoints then hold only what training changes, and loading one back
(resume, the best checkpoint at the end) expects exactly those keys to be missing.
"""

from __future__ import annotations

from transformers import Trainer

from bert_emd.errors import BertEmdError
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

    def _excluded(self) -> tuple[str, ...]:
        return tuple(getattr(self.accelerator.unwrap_model(self.model), "checkpoint_excludes", ()))

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        excluded = self._excluded()
        if excluded and state_dict is None:
            state_dict = {key: value for key, value in self.model.state_dict().items() if not key.startswith(excluded)}
        if self.args.should_save:
            refuse_non_finite(state_dict if state_dict is not None else self.model,
                              f"the model to {output_dir or self.args.output_dir}")
        super()._save(output_dir, state_dict)

    def _issue_warnings_after_load(self, load_result) -> None:
        excluded = self._excluded()
        missing = [key for key in load_result.missing_keys if not key.startswith(excluded)]
        if excluded and missing:  # a checkpoint of this module lacks what training changed: never go on from it
            raise BertEmdError(f"the checkpoint lacks {len(missing)} trained weight(s), e.g. {missing[0]}; run "
                               "again with --no-resume")
        if excluded:
            load_result = type(load_result)(missing, load_result.unexpected_keys)
        super()._issue_warnings_after_load(load_result)

    def _non_finite_guard(self) -> NonFiniteGuard | None:
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, NonFiniteGuard):
                return callback
        return None
