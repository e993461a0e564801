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


def model_folder(name: str) -> str:
    """The folder holding a model's config and tokenizer: an ONNX file's own folder, else the name itself."""
    return str(Path(name).parent) if name.endswith(".onnx") else name


def is_early_exit(name: str) -> bool:
    from bert_emd.early_exit.model import SETTINGS_FILE

    return (Path(name) / SETTINGS_FILE).is_file()


def _batched(tokenizer, max_length: int, batch_size: int, logits_of):
    """texts -> class probabilities, through ``logits_of(encoded batch) -> logits`` (numpy)."""

    def predict(first: list[str], second: list[str] | None) -> np.ndarray:
        out = []
        for start in range(0, len(first), batch_size):
            pair = (first[start:start + batch_size],) + ((second[start:start + batch_size],) if second else ())
            encoded = tokenizer(*pair, truncation=True, max_length=max_length, padding=True, return_tensors="np")
            logits = torch.from_numpy(np.asarray(logits_of(encoded), dtype=np.float32))
            out.append(logits.softmax(-1).numpy())
        return np.concatenate(out)

    return predict


def classifier(name: str, task, config: AttackConfig):
    """texts -> class probabilities, for any model the project writes: a model directory (fine-tuned, distilled,
    Theseus, hybrid, int8), an early-exit model at ``config.exit_threshold``, or an exported ONNX file."""
    tokenizer = load_tokenizer(model_folder(name), config.max_length)
    if name.endswith(".onnx"):
        from bert_emd.deploy.export import require_onnx

        _, onnxruntime, _ = require_onnx()
        if not Path(name).is_file():
            raise BertEmdError(f"no ONNX file at {name}")
        session = onnxruntime.InferenceSession(name, providers=["CPUExecutionProvider"])
        names = [item.name for item in session.get_inputs()]
        return _batched(tokenizer, config.max_length, config.batch_size,
                        lambda encoded: session.run(None, {key: encoded[key].astype(np.int64) for key in names})[0])
    if is_early_exit(name):
        from bert_emd.early_exit.model import EarlyExitModel
        from bert_emd.early_exit.uncertainty import check_uncertainty

        if config.exit_threshold is None:
            raise BertEmdError(f"{name} is an early-exit model: give --exit-threshold T, the uncertainty threshold it "
                               "is deployed at (its `early-exit evaluate` report chooses one; 0 attacks the full "
                               "model)")
        model = EarlyExitModel.from_pretrained(name).eval()
        check_uncertainty(config.exit_uncertainty, config.exit_threshold, config.exit_top_k,
                          model.settings["classes"])

        def early_exit_logits(encoded):
            inputs = {key: torch.from_numpy(value) for key, value in encoded.items()
                      if key in ("input_ids", "attention_mask", "token_type_ids")}
            return model.predict(**inputs, threshold=config.exit_threshold, measure=config.exit_uncertainty,
                                 top_k=config.exit_top_k)[0].numpy()

        return _batched(tokenizer, config.max_length, config.batch_size, early_exit_logits)
    model = load_trained_classifier(name, task).eval()

    def logits(encoded):
        with torch.inference_mode():
            return model(**{key: torch.from_numpy(value) for key, value in encoded.items()}).logits.float().numpy()

    return _batched(tokenizer, config.max_length, config.batch_size, logits)


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
    task = resolve_task(config, model_labels=label_names_of(load_config(model_folder(config.model))))
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
    if config.exit_threshold is not None and not any(is_early_exit(name) for name in models.values()):
        raise BertEmdError("--exit-threshold applies to an early-exit model (`bert-emd early-exit train`); "
                           f"{config.model} is not one")
    predictors = {role: classifier(name, task, config) for role, name in models.items()}
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
