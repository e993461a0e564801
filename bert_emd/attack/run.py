"""`bert-emd attack`: how a model (and its teacher) hold under a TextFooler-style attack on the same examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bert_emd.attack.config import AttackConfig
from bert_emd.attack.textfooler import AttackSettings, Outcome, attack_example, summarise
from bert_emd.data.loading import load_split, resolve_task
from bert_emd.errors import BertEmdError
from bert_emd.models import label_names_of, load_config, load_pretrained, load_tokenizer, load_trained_classifier
from bert_emd.options import resolve_config
from bert_emd.outputs import writes_output
from bert_emd.runinfo import run_record, write_json


def classifier(name: str, task, max_length: int, batch_size: int):
    """texts -> class probabilities, for any model directory the project writes."""
    model = load_trained_classifier(name, task).eval()
    tokenizer = load_tokenizer(name, max_length)

    def predict(first: list[str], second: list[str] | None) -> np.ndarray:
        out = []
        for start in range(0, len(first), batch_size):
            pair = (first[start:start + batch_size],) + ((second[start:start + batch_size],) if second else ())
            encoded = tokenizer(*pair, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            with torch.inference_mode():
                out.append(model(**encoded).logits.float().softmax(-1).numpy())
        return np.concatenate(out)

    return predict


def sentence_similarity(name: str, batch_size: int):
    """(original, texts) -> cosine of mean-pooled sentence embeddings; the original's is kept between calls."""
    from transformers import AutoModel, AutoTokenizer

    encoder = load_pretrained(AutoModel, name, "the sentence encoder").eval()
    tokenizer = load_pretrained(AutoTokenizer, name, "the sentence encoder's tokenizer")
    cache: dict[str, torch.Tensor] = {}

    def embed(texts: list[str]) -> torch.Tensor:
        parts = []
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(texts[start:start + batch_size], truncation=True, max_length=256, padding=True,
                                return_tensors="pt")
            with torch.inference_mode():
                states = encoder(**encoded).last_hidden_state
            mask = encoded["attention_mask"][..., None].float()
            parts.append(torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1))
        return torch.cat(parts)

    def similarity(original: str, texts: list[str]) -> np.ndarray:
        if original not in cache:
            cache.clear()
            cache[original] = embed([original])[0]
        return (embed(texts) @ cache[original]).numpy()

    return similarity


def chosen_examples(count: int, limit: int, seed: int) -> list[int]:
    """A seeded random subset of the split's indices, in order."""
    if count <= limit:
        return list(range(count))
    return sorted(np.random.default_rng(seed).choice(count, limit, replace=False).tolist())


def _read_done(path: Path) -> dict[int, dict]:
    done = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by an interruption
                continue
            done[record["index"]] = record
    return done


def run_attack(name: str, role: str, predict, similarity, neighbours, rows, indices: list[int], settings, pair: bool,
               path: Path, resume: bool) -> list[dict]:
    """Attack every chosen example, one JSON line each (kept across an interruption when resuming)."""
    done = _read_done(path) if resume else {}
    if not resume:
        path.unlink(missing_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for index in tqdm([index for index in indices if index not in done], desc=f"Attacking {role}"):
            row = rows[index]
            first, text = (row["text_a"], row["text_b"]) if pair else (None, row["text_a"])
            outcome = attack_example(predict, similarity, neighbours, text, int(row["label"]), settings, first)
            record = {"index": index, "status": outcome.status, "label": outcome.label,
                      "original_prediction": outcome.original_prediction, "original": text,
                      "perturbed": outcome.perturbed, "perturbed_prediction": outcome.perturbed_prediction,
                      "changed": outcome.changed, "words": outcome.words, "queries": outcome.queries,
                      **({"first_text": first} if pair else {})}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            done[index] = record
    return [done[index] for index in indices]


def as_outcomes(records: list[dict]) -> list[Outcome]:
    return [Outcome(record["status"], record["label"], record["original_prediction"], record["perturbed"],
                    record["perturbed_prediction"], record["words"], [tuple(pair) for pair in record["changed"]],
                    record["queries"]) for record in records]


def transfer(records: list[dict], predict, pair: bool) -> dict:
    """Of the adversarial examples found against one model, the share that also fool the other."""
    found = [record for record in records if record["status"] == "succeeded"]
    if not found:
        return {"adversarial_examples": 0, "also_fooled": 0, "share": None}
    texts = [record["perturbed"] for record in found]
    probabilities = predict([record["first_text"] for record in found], texts) if pair else predict(texts, None)
    fooled = int((probabilities.argmax(-1) != np.asarray([record["label"] for record in found])).sum())
    return {"adversarial_examples": len(found), "also_fooled": fooled, "share": fooled / len(found)}


def check_attack_options(config: AttackConfig) -> None:
    if not config.model or not config.output:
        raise BertEmdError("--model and --output are required")


@writes_output("attack", AttackConfig)
def attack(config: AttackConfig | str | dict | None = None, **overrides) -> dict:
    """Attack ``config.model`` (and ``config.teacher``) on a seeded subset of a split; see ``AttackConfig``."""
    config = resolve_config(AttackConfig, config, overrides)
    check_attack_options(config)
    task = resolve_task(config, model_labels=label_names_of(load_config(config.model)))
    if task.is_regression:
        raise BertEmdError(f"task {task.display_name} is a regression task: a label-flipping attack needs "
                           "classification")
    from bert_emd.augment.vectors import WordVectors

    vectors = WordVectors.load(config.vectors)
    rows = load_split(task, config, config.split)
    pair = "text_b" in rows.column_names
    indices = chosen_examples(len(rows), config.max_examples, config.seed)
    settings = AttackSettings(config.min_word_similarity, config.min_sentence_similarity, config.max_candidates,
                              config.max_queries, config.vocabulary_size)
    cache: dict[str, list] = {}

    def neighbours(word: str) -> list[tuple[str, float]]:
        if word not in cache:
            cache[word] = vectors.similar(word, settings.max_candidates, settings.vocabulary_size,
                                          settings.min_word_similarity)
        return cache[word]

    similarity = sentence_similarity(config.sentence_encoder, config.batch_size)
    output = Path(config.output)
    models = {"model": config.model, **({"teacher": config.teacher} if config.teacher else {})}
    predictors = {role: classifier(name, task, config.max_length, config.batch_size) for role, name in models.items()}
    label = f"TextFooler-style with {vectors.source} and {config.sentence_encoder} (not comparable with published " \
            "TextFooler numbers, which use counter-fitted vectors and the Universal Sentence Encoder)"
    results = {"attack": label, "task": task.name, "split": config.split, "examples": indices, "pair_task": pair,
               "perturbed_text": "the second text" if pair else "the text",
               "settings": settings.__dict__, "models": {}}
    records = {}
    for role, name in models.items():
        records[role] = run_attack(name, role, predictors[role], similarity, neighbours, rows, indices, settings,
                                   pair, output / f"adversarial_{role}.jsonl", config.resume)
        results["models"][role] = {"model": name, **summarise(as_outcomes(records[role]))}
    if config.teacher:
        results["transfer"] = {"teacher_to_model": transfer(records["teacher"], predictors["model"], pair),
                               "model_to_teacher": transfer(records["model"], predictors["teacher"], pair)}
    write_json(output / "attack_results.json", results)
    write_json(output / "run_config.json", run_record("attack", config, task=task.name))
    for role, summary in results["models"].items():
        print(f"{role}: clean accuracy {summary['clean_accuracy']:.3f}, under attack "
              f"{summary['accuracy_under_attack']:.3f}, success rate "
              + (f"{summary['attack_success_rate']:.3f}" if summary["attack_success_rate"] is not None else "-")
              + f" ({summary['examples']} examples)")
    print(f"{label}; results in {output / 'attack_results.json'}")
    return results
