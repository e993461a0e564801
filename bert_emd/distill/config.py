"""Options of `bert-emd distill` (defaults: the published BERT-EMD settings where they exist, docs/methods.md)."""

from __future__ import annotations

from dataclasses import dataclass

from bert_emd.data.loading import DataOptions
from bert_emd.distill.emd import MAPPINGS
from bert_emd.options import option
from bert_emd.training import TrainingOptions


@dataclass
class StudentOptions:
    """The student's shape and start (shared with `bert-emd general-distill`)."""
    student_layers: int | None = option(None,
                                        "number of student layers, fewer than the teacher's (required)", at_least=1)
    student_hidden: int | None = option(None, "student hidden size (default: the teacher's)", at_least=1)
    student_intermediate: int | None = option(None, "student feed-forward size (default: the teacher's)", at_least=1)
    student_heads: int | None = option(None, "student attention heads (default: the teacher's)", at_least=1)
    student_init: str = option("teacher", "teacher: copy embeddings and evenly spaced teacher layers (first and "
                               "last kept) where sizes allow; teacher:1,2: those teacher layers (1-based); random; "
                               "copy:MODEL or copy:MODEL:1,3,6: embeddings and evenly spaced (or those) layers of "
                               "another model of the teacher's family and size, e.g. the pre-trained model the "
                               "teacher was fine-tuned from, with a new task head; "
                               "or the path of a pretrained small model of the teacher's family")


@dataclass
class LayerTermOptions:
    """The intermediate-layer terms and their mapping (shared with `bert-emd general-distill`)."""
    mapping: str = option("emd", "layer mapping: emd (many-to-many, flow solved each step), skip (TinyBERT "
                          "uniform), last (PKD top layers), none (prediction-layer KD only)", choices=MAPPINGS)
    attention: str = option("scores", "attention term: pre-softmax scores (the reference code), softmax "
                            "probabilities, or off", choices=("scores", "probs", "off"))
    attention_distance: str = option("auto", "how the attention-score term is computed: factorised (from query/key "
                                     "Gram matrices while the model runs its fast SDPA attention; no L x L score "
                                     "map is made), maps (eager attention, every score map kept), or auto "
                                     "(factorised where the family's attention allows it, else maps); --attention "
                                     "probs always uses maps", choices=("auto", "factorised", "maps"))
    hidden: bool = option(True, "match hidden states of the transformer layers")
    embedding: bool = option(True, "match the embedding-layer output (plain MSE)")
    include_padding: bool = option(False, "count padding positions in the layer distances (the reference code "
                                   "does; excluded by default)")
    # cost attention
    weight_update: bool = option(True, "learn the layer weights by cost attention after each EMD solve")
    weight_norm: str = option("softmax", "normalise the layer weights by softmax(w / T) or w / sum(w)",
                              choices=("softmax", "sum"))
    emd_temperature: float = option(1.0, "temperature T of the softmax weight normalisation", above=0)
    separate_weights: bool = option(False, "keep attention and hidden-state layer weights apart (default: "
                                    "averaged into one shared pair after each step, as the reference)")
    history_every: int = option(10, "record the layer weights in distill_state.json every N steps", at_least=1)


@dataclass
class DistillConfig(TrainingOptions, DataOptions, StudentOptions, LayerTermOptions):
    teacher: str | None = option(None, "fine-tuned teacher directory (a `bert-emd finetune` output) (required)")
    # loss
    alpha: float = option(1.0, "share of the soft (teacher) prediction loss; 1 - alpha goes to the labels",
                          at_least=0, at_most=1)
    beta: float = option(0.005, "weight of the layer terms (EMD terms and embedding MSE) beside the prediction "
                         "loss (joint schedule; the two-stage layer stage trains on them unweighted)", at_least=0)
    theta: float = option(1.0, "weight of the EMD terms inside the layer terms", at_least=0)
    kd_temperature: float = option(1.0, "temperature of the soft prediction loss", above=0)
    count_tokens: str = option("labelled", "token tasks: the tokens the soft prediction loss averages over, the "
                               "labelled pieces (first piece of each word) or every attended token",
                               choices=("labelled", "attention"))
    extra_terms: str = option("", "more registered loss terms (bert_emd.distill.terms.register_term), "
                              "comma-separated NAME or NAME:WEIGHT (default weight 1); a layer term is weighed "
                              "by --beta with the others")
    # schedule
    schedule: str = option("joint", "joint: all terms together; two-stage: layer terms first, then prediction",
                           choices=("joint", "two-stage"))
    intermediate_epochs: float | None = option(None, "two-stage: epochs of the layer stage (default: --epochs)",
                                               above=0)
    prediction_epochs: float | None = option(None, "two-stage: epochs of the prediction stage (default: --epochs)",
                                             above=0)
    intermediate_learning_rate: float | None = option(None, "two-stage: learning rate of the layer stage "
                                                      "(default: --learning-rate)", above=0)
    prediction_learning_rate: float | None = option(None, "two-stage: learning rate of the prediction stage "
                                                    "(default: --learning-rate)", above=0)
    intermediate_lr_schedule: str | None = option(None, "two-stage: schedule of the layer stage, linear or "
                                                  "constant (TinyBERT: constant; default: --lr-schedule)",
                                                  choices=("linear", "constant"))
    batch_size: int = option(32, "training batch size per process (the paper's setting)", at_least=1)
    epochs: float = option(3.0, "training epochs (joint schedule)", above=0)
