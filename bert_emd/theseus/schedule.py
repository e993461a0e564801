"""The replacing rate p of BERT-of-Theseus (Xu et al., EMNLP 2020) at each optimiser step.

``constant``: p for the first ``replacing_steps`` steps, then 1 (the successor alone).
``linear`` (the curriculum): p = min(1, k * t + b), with slope k given or k = (1 - b) / S for S steps to p = 1.
After p reaches 1 training goes on with the successor alone (the paper's successor fine-tuning phase).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bert_emd.errors import BertEmdError


@dataclass(frozen=True)
class ReplacingSchedule:
    kind: str
    rate: float = 0.5  # constant p
    replacing_steps: int | None = None  # constant: steps before the successor trains alone (None: never)
    start: float = 0.3  # linear: b
    slope: float | None = None  # linear: k

    def __post_init__(self):
        if self.kind not in ("constant", "linear"):
            raise BertEmdError(f"--replacing-rate-schedule must be constant or linear (got {self.kind!r})")
        if self.kind == "linear" and (self.slope is None or self.slope <= 0):
            raise BertEmdError("the linear schedule needs a slope above 0 (--replacing-rate-slope K or "
                               "--replacing-steps-to-one S)")

    @classmethod
    def from_options(cls, kind: str, rate: float, replacing_steps: int | None, start: float, slope: float | None,
                     steps_to_one: int | None, share_to_one: float | None = None,
                     total_steps: int | None = None) -> ReplacingSchedule:
        """The schedule the options describe; the linear one takes exactly one of ``slope``, ``steps_to_one`` and
        ``share_to_one`` (p = 1 after that share of ``total_steps``)."""
        if kind == "linear":
            if sum(value is not None for value in (slope, steps_to_one, share_to_one)) != 1:
                raise BertEmdError("the linear schedule takes one of --replacing-rate-slope K, "
                                   "--replacing-steps-to-one S and --replacing-share-to-one F")
            if share_to_one is not None:
                steps_to_one = max(1, round(share_to_one * total_steps))
            if steps_to_one is not None:
                slope = (1.0 - start) / steps_to_one
        return cls(kind, rate, replacing_steps, start, slope)

    def rate_at(self, step: int) -> float:
        """p for optimiser step ``step`` (0-based: the first step is 0)."""
        if self.kind == "constant":
            return 1.0 if self.replacing_steps is not None and step >= self.replacing_steps else self.rate
        return min(1.0, self.slope * step + self.start)

    def successor_alone_from(self) -> int | None:
        """The first step at which p is 1 (None: never)."""
        if self.kind == "constant":
            return self.replacing_steps if self.rate < 1.0 else 0
        return max(0, math.ceil((1.0 - self.start) / self.slope - 1e-12))
