"""The speed-accuracy plot of `bert-emd early-exit evaluate`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curve(report: dict, path: Path) -> Path:
    """Main metric against speedup (FLOPs and measured latency per batch size), one line per measure."""
    main = report["main_metric"]
    speeds = ["flops"] + sorted(next(iter(report["curves"].values()))[0].get("latency_speedup", {}), key=int)
    figure, axes = plt.subplots(1, len(speeds), figsize=(4 * len(speeds), 3.4), squeeze=False)
    full = report["full_model"]["metrics"][main]
    for speed, axis in zip(speeds, axes[0]):
        for measure, points in report["curves"].items():
            xs = [point["flops_speedup"] if speed == "flops" else point["latency_speedup"][speed] for point in points]
            ys = [100 * point["metrics"][main] for point in points]
            axis.plot(xs, ys, marker="o", label=measure, alpha=0.8)
        axis.axhline(100 * full, color="grey", linestyle="--", linewidth=1, label="full model")
        axis.axhline(100 * (full - report["max_loss"]), color="red", linestyle=":", linewidth=1,
                     label=f"full - {100 * report['max_loss']:g} pt")
        axis.set_xlabel("FLOPs speedup" if speed == "flops" else f"measured speedup, batch {speed}")
        axis.set_ylabel(f"{main} x 100")
        axis.legend(fontsize=7)
    figure.suptitle(f"{report['task']} early exit ({report['design']} students, {report['layers']} layers)",
                    fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
