"""`make demo`: the main job on the embedded default - the bundled MiniLM teacher on an SST-2 subset.

Fine-tunes ``minilm-l6`` on the first 2,000 SST-2 training sentences, scores it on the full SST-2
dev set and prints where everything was written. Run ``python -m bert_emd.demo --help``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bert_emd.errors import BertEmdError
from bert_emd.finetune import finetune


def run(data_dir: str, output: str, train_samples: int) -> dict:
    started = time.time()
    teacher_dir = Path(output) / "teacher"
    print(f"[1/1] fine-tuning the bundled MiniLM-L6 teacher on {train_samples} SST-2 sentences -> {teacher_dir}")
    teacher = finetune(model="minilm-l6", task="sst2", data_dir=data_dir, output=str(teacher_dir),
                       max_train_samples=train_samples, epochs=1, learning_rate=1e-4, resume=False)
    dev = teacher["splits"]["dev"]
    print("\n=== bert-emd demo ===")
    print(f"teacher  MiniLM-L6 fine-tuned on {train_samples} SST-2 sentences, 1 epoch "
          f"({teacher['train']['runtime_s']:.0f} s of training)")
    print(f"SST-2 dev accuracy: {dev['metrics']['accuracy']:.4f} on {dev['num_examples']} sentences")
    print(f"outputs: {teacher_dir} (model, tokenizer, eval_results.json, run_config.json, runs/ for TensorBoard)")
    print(f"total time: {time.time() - started:.0f} s")
    return teacher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert_emd.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/glue", help="GLUE TSV directory")
    parser.add_argument("--output", default="outputs/demo", help="where the demo writes its models")
    parser.add_argument("--train-samples", type=int, default=2000, help="SST-2 training sentences to use")
    args = parser.parse_args(argv)
    try:
        run(args.data_dir, args.output, args.train_samples)
    except BertEmdError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
