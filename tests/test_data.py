"""Task registry and the three data sources, checked against the files themselves."""

from __future__ import annotations

import csv
import json

import datasets
import pytest

from bert_emd.data import GLUE_TASKS, DataOptions, expand_split, get_task, load_split, resolve_task
from bert_emd.errors import BertEmdError
from tests.conftest import write_glue_task


def _tsv_rows(path, header=True):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[1:] if header else rows


@pytest.mark.parametrize("name", ["sst2", "SST-2", "sst-2", "Sst_2", "STS-B", "stsb", "cola", "MNLI", "qnli"])
def test_task_names_ignore_case_and_dashes(name):
    assert get_task(name).name == name.lower().replace("-", "").replace("_", "")


def test_registry_has_all_nine_glue_tasks():
    assert set(GLUE_TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    assert GLUE_TASKS["stsb"].is_regression and GLUE_TASKS["stsb"].num_labels == 1
    assert GLUE_TASKS["mnli"].eval_splits == ("dev_matched", "dev_mismatched")
    assert GLUE_TASKS["cola"].main_metric == "matthews_correlation"


def test_unknown_task_is_a_clear_error():
    with pytest.raises(BertEmdError, match="unknown task 'sst3'"):
        get_task("sst3")


@pytest.mark.parametrize("task, folder, text_index, label_index, header", [
    ("sst2", "SST-2", (0,), 1, True),
    ("cola", "CoLA", (3,), 1, False),
    ("mrpc", "MRPC", (3, 4), 0, True),
    ("rte", "RTE", (1, 2), 3, True),
    ("stsb", "STS-B", (7, 8), 9, True),
])
def test_shared_glue_tasks_match_the_files(glue_dir, task, folder, text_index, label_index, header):
    spec = get_task(task)
    options = DataOptions(task=task, data_dir=str(glue_dir))
    dev = load_split(spec, options, "dev")
    rows = _tsv_rows(glue_dir / folder / "dev.tsv", header)
    assert len(dev) == len(rows)
    for example, row in zip([dev[0], dev[len(dev) - 1]], [rows[0], rows[-1]]):
        assert example["text_a"] == row[text_index[0]]
        if len(text_index) == 2:
            assert example["text_b"] == row[text_index[1]]
        expected = float(row[label_index]) if spec.is_regression else spec.labels.index(row[label_index])
        assert example["label"] == pytest.approx(expected)
    test = load_split(spec, options, "test")
    test_rows = _tsv_rows(glue_dir / folder / "test.tsv")
    assert len(test) == len(test_rows)
    assert test[5]["idx"] == int(test_rows[5][0])
    if not spec.is_regression:
        assert set(test["label"]) == {-1}


def test_max_samples_cut_splits(glue_dir):
    options = DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=30, max_eval_samples=7)
    spec = get_task("sst2")
    assert len(load_split(spec, options, "train")) == 30
    assert len(load_split(spec, options, "dev")) == 7


@pytest.mark.parametrize("task", ["mnli", "qqp", "qnli", "wnli"])
def test_written_glue_tasks_load(tmp_path, task):
    folder = write_glue_task(tmp_path, task, rows=9)
    spec = get_task(task)
    options = DataOptions(task=task, data_dir=str(tmp_path))
    train = load_split(spec, options, "train")
    assert len(train) == 9 and "text_b" in train.column_names
    rows = _tsv_rows(folder / "train.tsv")
    header = _tsv_rows(folder / "train.tsv", header=False)[0]
    assert train[4]["text_a"] == rows[4][header.index(spec.text_columns[0])]
    assert spec.labels[train[4]["label"]] == rows[4][header.index(spec.label_column)]
    for split in expand_split(spec, "dev"):
        assert len(load_split(spec, options, split)) == 9
    for split in expand_split(spec, "test"):
        assert set(load_split(spec, options, split)["label"]) == {-1}


def test_mnli_dev_means_both_dev_sets():
    assert expand_split(get_task("mnli"), "dev") == ("dev_matched", "dev_mismatched")
    assert expand_split(get_task("mnli"), "test") == ("test_matched", "test_mismatched")
    with pytest.raises(BertEmdError, match="unknown split 'validation'"):
        expand_split(get_task("rte"), "validation")


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl"])
def test_own_files_in_three_formats(tmp_path, suffix):
    rows = [("good film", "pos"), ("awful, truly", "neg"), ('he said "wow"', "pos"), ("meh", "neg")]
    path = tmp_path / f"train.{suffix}"
    if suffix == "jsonl":
        path.write_text("".join(json.dumps({"review": t, "sentiment": y}) + "\n" for t, y in rows))
    else:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="," if suffix == "csv" else "\t",
                                quoting=csv.QUOTE_MINIMAL if suffix == "csv" else csv.QUOTE_NONE, escapechar="\\")
            writer.writerow(["review", "sentiment"])
            writer.writerows(rows)
    options = DataOptions(train_file=str(path), validation_file=str(path), text_columns="review",
                          label_column="sentiment")
    spec = resolve_task(options)
    assert spec.labels == ("neg", "pos") and spec.main_metric == "accuracy"
    train = load_split(spec, options, "train")
    assert train["text_a"][:2] == ["good film", "awful, truly"]
    assert train["label"] == [1, 0, 1, 0]


def test_a_split_without_its_own_file_names_the_flag_that_gives_it(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": f"s{i}", "label": i % 2}) + "\n" for i in range(4)))
    options = DataOptions(train_file=str(path))
    spec = resolve_task(options)
    assert load_split(spec, options, "train")["label"] == [0, 1, 0, 1]
    for split, flag in (("validation", "--validation-file"), ("test", "--test-file")):
        with pytest.raises(BertEmdError, match=f"^the {split} split needs {flag}$"):
            load_split(spec, options, split)
    path.write_text('{"text": "a", "label": 0}\n[1, 2]\n')
    with pytest.raises(BertEmdError, match="train.jsonl, line 2: expected a JSON object per line"):
        load_split(spec, options, "train")

def test_own_regression_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"a": f"s{i}", "b": f"t{i}", "y": i / 2}) + "\n" for i in range(5)))
    options = DataOptions(train_file=str(path), text_columns="a,b", label_column="y", regression=True)
    spec = resolve_task(options)
    train = load_split(spec, options, "train")
    assert spec.is_regression and train["label"] == [0.0, 0.5, 1.0, 1.5, 2.0] and train["text_b"][1] == "t1"


def test_hub_source_renames_columns(monkeypatch):
    calls = []

    def fake_load_dataset(path, name, split):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict({"premise": ["p"], "hypothesis": ["h"], "label": [2], "idx": [7]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    dev = load_split(get_task("mnli"), DataOptions(task="mnli"), "dev_mismatched")
    assert calls == [("nyu-mll/glue", "mnli", "validation_mismatched")]
    assert dev[0] == {"text_a": "p", "text_b": "h", "label": 2, "idx": 7}


def test_hub_unreachable_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(BertEmdError, match="could not load GLUE RTE .* pass --data-dir"):
        load_split(get_task("rte"), DataOptions(task="rte"), "train")


def test_tokenised_data_is_fingerprinted_by_the_tokenizer_and_settings(tiny_bert, tmp_path):
    """The fingerprint datasets keys its cache by covers the tokenizer's pipeline and the settings: a file-backed
    dataset (cached on disk) tokenised by a changed tokenizer gets the changed tokenizer's ids, not the cache's."""
    from transformers import AutoTokenizer

    from bert_emd.data.loading import map_fingerprint, tokenize

    table = tmp_path / "rows.csv"
    table.write_text("text_a,label,idx\nhello zzyzx world,0,0\nplots and actors,1,1\n", encoding="utf-8")
    dataset = datasets.load_dataset("csv", data_files=str(table), split="train",
                                    cache_dir=str(tmp_path / "cache"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    first = tokenize(dataset, tokenizer, 32)
    assert first._fingerprint == tokenize(dataset, AutoTokenizer.from_pretrained(tiny_bert), 32)._fingerprint
    assert first["input_ids"] == [tokenizer(text)["input_ids"] for text in ("hello zzyzx world", "plots and actors")]
    assert tokenize(dataset, tokenizer, 3)._fingerprint != first._fingerprint
    assert tokenize(dataset, tokenizer, 3)["input_ids"][0] == tokenizer("hello zzyzx world", truncation=True,
                                                                        max_length=3)["input_ids"]
    changed = AutoTokenizer.from_pretrained(tiny_bert)
    changed.add_tokens(["zzyzx"])
    again = tokenize(dataset, changed, 32)
    assert again._fingerprint != first._fingerprint
    assert again["input_ids"][0] == changed("hello zzyzx world")["input_ids"] != first["input_ids"][0]
    assert map_fingerprint(dataset, object(), "any") is None  # no fast backend: datasets hashes as usual
