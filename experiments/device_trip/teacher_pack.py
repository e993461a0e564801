"""Carry a fine-tuned teacher to a lent GPU machine inside its 64 MiB limit, exactly.

A MiniLM teacher is 91 MB in fp32 and does not compress below 77 MB. Packed here: every tensor in fp32, except that
the word-embedding matrix keeps only the rows of the tokens in the texts the device will feed it (the training file
and the dev set), split into byte planes and zlib-compressed (the SST-2 slice teacher: 57.8 MB). Rebuilt there with
zeros in the rows left out: no input on the device reaches them, so the teacher's outputs (and a student copied from
it, whose unused rows get no gradient) are the same as the full model's. `check` proves it on the texts.

    python teacher_pack.py pack TEACHER_DIR OUT_DIR --task T --data-dir D --augmented FILE  (train = FILE, + dev)
    python teacher_pack.py rebuild PACKED_DIR MODEL_DIR     (writes MODEL_DIR/model.safetensors; numpy only)
    python teacher_pack.py check TEACHER_DIR MODEL_DIR --task T --data-dir D   (on the dev set)
"""
from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

KEEP_FIRST_IDS = 1000  # [PAD], [UNK], [CLS], [SEP], [MASK] and the unused ids, whatever a vocabulary puts there


def task_texts(task: str, data_dir: str, augmented: str | None = None, splits: tuple[str, ...] = ("dev",)) -> list[str]:
    """Every text of the task's splits as bert-emd reads them (train: the augmented file when one is given)."""
    from bert_emd.data.loading import DataOptions, expand_split, load_split
    from bert_emd.data.tasks import get_task

    spec = get_task(task)
    options = DataOptions(task=task, data_dir=data_dir, augmented_train=augmented)
    texts: list[str] = []
    for split in [name for wanted in splits for name in expand_split(spec, wanted)]:
        dataset = load_split(spec, options, split)
        for column in ("text_a", "text_b")[:len(spec.text_columns)]:
            texts += dataset[column]
    return texts


def used_ids(teacher: str, texts: list[str]) -> np.ndarray:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(teacher)
    ids = set(range(min(KEEP_FIRST_IDS, tokenizer.vocab_size)))
    for start in range(0, len(texts), 5000):
        for row in tokenizer(texts[start:start + 5000])["input_ids"]:
            ids.update(row)
    return np.array(sorted(ids), dtype=np.int64)


def pack(teacher: str, out: str, texts: list[str]) -> dict:
    tensors = load_file(f"{teacher}/model.safetensors")
    key = next(name for name in tensors if name.endswith("word_embeddings.weight"))
    ids = used_ids(teacher, texts)
    layout = {"rows_key": key, "rows_shape": list(tensors[key].shape), "rows_kept": len(ids), "tensors": []}
    tensors[key] = tensors[key][ids]
    parts = []
    for name, value in tensors.items():
        if value.dtype != np.float32:
            raise SystemExit(f"{name} is {value.dtype}; only fp32 teachers are packed")
        layout["tensors"].append({"name": name, "shape": list(value.shape)})
        parts.append(np.ascontiguousarray(value).ravel().view(np.uint8))
    planes = np.concatenate(parts).reshape(-1, 4)
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, "ids.bin").write_bytes(zlib.compress(ids.tobytes(), 9))
    for plane in range(4):
        Path(out, f"plane{plane}.bin").write_bytes(zlib.compress(np.ascontiguousarray(planes[:, plane]).tobytes(), 9))
    Path(out, "layout.json").write_text(json.dumps(layout), encoding="utf-8")
    return layout


def rebuild(packed: str, out: str) -> dict[str, np.ndarray]:
    layout = json.loads(Path(packed, "layout.json").read_text(encoding="utf-8"))
    ids = np.frombuffer(zlib.decompress(Path(packed, "ids.bin").read_bytes()), dtype=np.int64)
    planes = [np.frombuffer(zlib.decompress(Path(packed, f"plane{i}.bin").read_bytes()), dtype=np.uint8)
              for i in range(4)]
    flat = np.stack(planes, axis=1).reshape(-1).view(np.float32)
    tensors, offset = {}, 0
    for entry in layout["tensors"]:
        size = int(np.prod(entry["shape"]))
        tensors[entry["name"]] = flat[offset:offset + size].reshape(entry["shape"]).copy()
        offset += size
    if offset != flat.size:
        raise SystemExit(f"{packed}: {flat.size - offset} values left over; the pack is damaged")
    rows = np.zeros(layout["rows_shape"], dtype=np.float32)
    rows[ids] = tensors[layout["rows_key"]]
    tensors[layout["rows_key"]] = rows
    Path(out).mkdir(parents=True, exist_ok=True)
    save_file(tensors, f"{out}/model.safetensors", metadata={"format": "pt"})
    return tensors


def check(teacher: str, rebuilt: str, texts: list[str], batch_size: int = 64) -> float:
    """Largest absolute difference of the logits and hidden states of the two models on the texts (0.0: exact)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(teacher)
    models = [AutoModelForSequenceClassification.from_pretrained(path).eval() for path in (teacher, rebuilt)]
    worst = 0.0
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            outputs = [model(**batch, output_hidden_states=True) for model in models]
            pairs = [(outputs[0].logits, outputs[1].logits)]
            pairs += list(zip(outputs[0].hidden_states, outputs[1].hidden_states))
            worst = max([worst] + [float((a - b).abs().max()) for a, b in pairs])
    return worst


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["pack", "rebuild", "check"])
    parser.add_argument("source", help="pack, check: the teacher; rebuild: the packed folder")
    parser.add_argument("target", help="pack: the packed folder; rebuild, check: the rebuilt model's folder")
    parser.add_argument("--task")
    parser.add_argument("--data-dir")
    parser.add_argument("--augmented", help="pack: the augmented training file the device trains on")
    args = parser.parse_args()
    if args.command != "rebuild" and not (args.task and args.data_dir):
        parser.error(f"{args.command} needs --task and --data-dir")
    if args.command == "pack":
        found = pack(args.source, args.target, task_texts(args.task, args.data_dir, args.augmented, ("train", "dev")))
        packed = sum(path.stat().st_size for path in Path(args.target).iterdir())
        print(f"packed: {found['rows_kept']} of {found['rows_shape'][0]} embedding rows kept; "
              f"{Path(args.source, 'model.safetensors').stat().st_size} bytes -> {packed} bytes")
    elif args.command == "rebuild":
        print(f"rebuilt: {len(rebuild(args.source, args.target))} tensors")
    else:
        texts = task_texts(args.task, args.data_dir)
        difference = check(args.source, args.target, texts)
        print(f"largest difference in logits and hidden states over {len(texts)} dev texts: {difference}")
        sys.exit(0 if difference == 0.0 else 2)
