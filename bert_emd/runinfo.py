"""What every run writes beside its outputs: the resolved config, the seed and package versions."""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bert_emd.options import to_dict

PACKAGES = ("bert-emd", "torch", "transformers", "datasets", "accelerate", "pot", "scikit-learn", "scipy",
            "numpy", "tokenizers", "safetensors")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_json(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return path


def read_json(path: str | Path) -> Any:
    """A JSON file's contents, or None when it is missing or unreadable (a record still to be written)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _torch_threads() -> int:
    import torch  # imported here: runinfo is also used by commands that have not loaded torch yet

    return torch.get_num_threads()


def accelerator() -> str:
    """What training ran on: scores from a GPU are not bit-identical to CPU runs of the same seed."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def run_record(command: str, config: Any, **extra: Any) -> dict[str, Any]:
    """The content of ``run_config.json``: enough to run the same thing again."""
    return {
        "command": command,
        "config": to_dict(config),
        "seed": getattr(config, "seed", None),
        "versions": package_versions(),
        "argv": sys.argv,
        "platform": platform.platform(),
        "torch_threads": _torch_threads(),  # training wall-clock depends on it
        "accelerator": accelerator(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
