"""experiments/device_trip/teacher_pack.py: a teacher packed for the GPU trip rebuilds exactly on the texts it was
packed for, and not beyond them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

MODULE = Path(__file__).resolve().parents[1] / "experiments" / "device_trip" / "teacher_pack.py"


@pytest.fixture(scope="module")
def teacher_pack():
    spec = importlib.util.spec_from_file_location("teacher_pack", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packed_teacher_rebuilds_exactly_on_its_texts(teacher_pack, tiny_teacher, glue_dir, tmp_path):
    jsonl = tmp_path / "augmented.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text_a": text, "label": "1"})
                               for text in ["a gripping , funny film", "dull and far too long"]), encoding="utf-8")
    texts = teacher_pack.task_texts("sst2", str(glue_dir), str(jsonl), ("train", "dev"))
    assert len(texts) == 2 + 872
    layout = teacher_pack.pack(str(tiny_teacher), str(tmp_path / "packed"), texts)
    rebuilt = tmp_path / "rebuilt"
    tensors = teacher_pack.rebuild(str(tmp_path / "packed"), str(rebuilt))
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(tiny_teacher / name, rebuilt / name)

    original = load_file(str(tiny_teacher / "model.safetensors"))
    key = layout["rows_key"]
    kept = np.frombuffer(zlib.decompress((tmp_path / "packed" / "ids.bin").read_bytes()), dtype=np.int64)
    assert 1000 < layout["rows_kept"] == len(kept) < original[key].shape[0]
    assert set(tensors) == set(original)
    for name in original:
        if name != key:
            assert np.array_equal(tensors[name], original[name]), name
    assert np.array_equal(tensors[key][kept], original[key][kept])
    left_out = np.setdiff1d(np.arange(original[key].shape[0]), kept)
    assert not tensors[key][left_out].any()

    assert teacher_pack.check(str(tiny_teacher), str(rebuilt), texts) == 0.0
    # a word none of the packed texts hold reaches a zeroed row: the rebuilt teacher differs there
    assert teacher_pack.check(str(tiny_teacher), str(rebuilt), ["xylophonist quokka zeppelins"]) > 0.0


def test_a_damaged_pack_is_refused(teacher_pack, tiny_teacher, tmp_path):
    teacher_pack.pack(str(tiny_teacher), str(tmp_path / "packed"), ["a film"])
    plane = tmp_path / "packed" / "plane0.bin"
    data = zlib.decompress(plane.read_bytes())
    plane.write_bytes(zlib.compress(data[:-4]))
    with pytest.raises((SystemExit, ValueError)):
        teacher_pack.rebuild(str(tmp_path / "packed"), str(tmp_path / "rebuilt"))
