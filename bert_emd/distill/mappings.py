"""The layer mappings, as objects in one registry.

A mapping says how student layers learn from teacher layers: a flow matrix F (N student x M teacher layers,
rows summing to the student weights, columns to the teacher weights) that weights the layer distances,
``loss = sum F * D``. ``emd`` solves F each step as the optimal transport between the layer weights and learns
those weights by cost attention; a fixed mapping gives the same F every step; ``none`` has no layer terms at all
(prediction-layer KD only). Every command that takes ``--mapping`` reads the names here, so a new mapping is one
class (or one ``FixedMapping`` with its rule) and one ``register_mapping`` call::

    register_mapping(FixedMapping("first", "every student layer learns teacher layer 1",
                                  lambda student, teacher: [1] * student))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bert_emd.distill.registry import Registry
from bert_emd.errors import BertEmdError


@dataclass(frozen=True)
class Mapping:
    name: str
    description: str
    layer_terms: bool = True  # False: no layer terms (prediction-layer KD only)
    learns_weights: bool = False  # cost attention updates the layer weights after each solve

    @property
    def fixed(self) -> bool:
        """A flow that does not depend on the distances: computed once, no solve on the training path."""
        return False

    def flow(self, cost: np.ndarray, student_weights: np.ndarray, teacher_weights: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class TransportMapping(Mapping):
    """BERT-EMD: the exact optimal transport of the layer weights under the distances, every step."""

    learns_weights: bool = True

    def flow(self, cost, student_weights, teacher_weights):
        from bert_emd.distill.emd import solve_transport

        return solve_transport(cost, student_weights, teacher_weights)


@dataclass(frozen=True)
class FixedMapping(Mapping):
    """Each student layer learns one teacher layer: ``rule(N, M)`` gives the 1-based teacher layer of each of the
    N student layers; the flow puts mass 1 / N on each such pair."""

    rule: Callable[[int, int], list[int]] | None = None

    @property
    def fixed(self) -> bool:
        return True

    def teacher_layers(self, student_layers: int, teacher_layers: int) -> list[int]:
        chosen = self.rule(student_layers, teacher_layers)
        if len(chosen) != student_layers or not all(1 <= layer <= teacher_layers for layer in chosen):
            raise BertEmdError(f"mapping {self.name}: its rule gave teacher layers {chosen} for {student_layers} "
                               f"student and {teacher_layers} teacher layers")
        return chosen

    def fixed_flow(self, student_layers: int, teacher_layers: int) -> np.ndarray:
        flow = np.zeros((student_layers, teacher_layers))
        for row, teacher_layer in enumerate(self.teacher_layers(student_layers, teacher_layers)):
            flow[row, teacher_layer - 1] = 1.0 / student_layers
        return flow


MAPPINGS: Registry = Registry("mapping")


def register_mapping(mapping: Mapping) -> Mapping:
    return MAPPINGS.add(mapping)


def get_mapping(name: str) -> Mapping:
    if name not in MAPPINGS:
        raise BertEmdError(f"unknown mapping {name!r}; choose from {', '.join(MAPPINGS)}")
    return MAPPINGS[name]


register_mapping(TransportMapping("emd", "many-to-many: the flow solved each step by EMD, layer weights learned by "
                                  "cost attention"))
register_mapping(FixedMapping("skip", "TinyBERT's uniform mapping: student layer i learns teacher layer "
                              "ceil(i M / N), so the top student layer learns the top teacher layer",
                              rule=lambda n, m: [math.ceil(i * m / n) for i in range(1, n + 1)]))
register_mapping(FixedMapping("last", "PKD-last: the top N teacher layers",
                              rule=lambda n, m: list(range(m - n + 1, m + 1))))
register_mapping(Mapping("none", "no layer terms: prediction-layer KD only", layer_terms=False))
