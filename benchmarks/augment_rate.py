"""How fast `bert-emd augment` is: GloVe-only augmentation of all of MRPC's training set (3,668 pairs,
N = 30; goal: under 2 minutes on 2 CPU cores), and the masked-LM path with a tiny random 2-layer BERT
MLM (the real MiniLM WordPiece tokenizer) on the first pairs of MRPC.

    python benchmarks/augment_rate.py [--data-dir ../shared/glue] [--mlm-pairs 200] [--threads 2]
                                      [--output results/augment_rate]

The augmented files go to a temporary folder (they are large); the record keeps the counts, times and
rates (sentences written per second, both texts of a pair counted) and the package versions.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch


def tiny_mlm(folder: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from bert_emd.models import resolve_model

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))
    BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, num_hidden_layers=2, hidden_size=32,
                               num_attention_heads=4, intermediate_size=64)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/glue")
    parser.add_argument("--glove-pairs", type=int, default=None, help="MRPC pairs for the GloVe path (default: all)")
    parser.add_argument("--mlm-pairs", type=int, default=200, help="MRPC pairs for the masked-LM path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="folder for the JSON record")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import bert_emd
    from bert_emd.runinfo import package_versions, write_json

    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        runs["glove"] = bert_emd.augment(task="mrpc", data_dir=args.data_dir, output=str(scratch / "glove.jsonl"),
                                         num_augmented=30, max_train_samples=args.glove_pairs)
        runs["tiny_mlm"] = bert_emd.augment(task="mrpc", data_dir=args.data_dir, output=str(scratch / "mlm.jsonl"),
                                            num_augmented=30, max_train_samples=args.mlm_pairs,
                                            mlm=str(tiny_mlm(scratch / "tiny_mlm")))
    summary = {name: {"originals": run["counts"]["originals"], "written": run["counts"]["written"],
                      "seconds": run["seconds"], "sentences_per_second": run["sentences_per_second"],
                      "candidate_sources": run["candidate_sources"]} for name, run in runs.items()}
    for name, run in summary.items():
        print(f"{name:9s} {run['originals']:5d} pairs -> {run['written']:7d} examples in {run['seconds']:6.1f} s: "
              f"{run['sentences_per_second']:8.0f} sentences/s")
    print(f"MRPC GloVe-only, N = 30, {summary['glove']['originals']} pairs: {summary['glove']['seconds']:.1f} s (goal "
          "for all 3,668: < 120 s)")
    if args.output:
        path = write_json(Path(args.output) / "augment_rate.json", {
            "command": " ".join(sys.argv), "threads": args.threads, "runs": summary, "versions": package_versions()})
        print(f"written to {path}")


if __name__ == "__main__":
    main()
