"""Command line: classify texts with a trained checkpoint or a .tflite file.

```bash
python -m trainers.predict --model runs/bbc/student "The striker scored twice"
python -m trainers.predict --model runs/bbc/tflite/model_dynamic_int8.tflite \\
    --file news.csv --text-column body --json
cat texts.txt | python -m trainers.predict --model runs/bbc/student --top 3
```

Prints one line per text: the top label, its probability, the others in
parentheses (`--top K`: the K most probable), then the text; `--json`: one
JSON object per line. The work is done by `export.predictor` and
`tinybert_tf.predict`; a .tflite file runs without TensorFlow.
"""

import argparse
import sys

from tinybert_tf import console


def _positive(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m trainers.predict",
        description="Classify texts with a checkpoint directory (Keras) or "
                    "an exported .tflite file (LiteRT or MediaPipe).")
    parser.add_argument("texts", nargs="*", metavar="TEXT",
                        help="texts to classify; '-' reads standard input "
                             "(one a line), as does no text when input is "
                             "piped")
    parser.add_argument("--model", required=True,
                        help="a student or teacher checkpoint directory, or "
                             "a .tflite file of python -m export.tflite")
    parser.add_argument("--file", default=None,
                        help="texts from a file: .txt (one a line) or "
                             ".csv/.tsv/.jsonl (the --text-column)")
    parser.add_argument("--text-column", default="text",
                        help="column of the texts in a CSV/TSV/JSONL file")
    parser.add_argument("--runtime", default=None, choices=("litert",
                                                            "mediapipe"),
                        help="for a .tflite file: LiteRT (default) or "
                             "MediaPipe's TextClassifier")
    parser.add_argument("--sequence-length", type=_positive, default=None,
                        help="checkpoints only (a .tflite file's is fixed); "
                             "default: the training length the checkpoint "
                             "records, else 128")
    parser.add_argument("--top", type=_positive, default=None,
                        help="show the K most probable labels (default all)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line: text, label, "
                             "probabilities")
    parser.add_argument("--batch-size", type=_positive, default=64,
                        help="texts classified (and printed) at a time")
    console.add_verbose_flag(parser)
    return parser.parse_args(argv)


def run(args):
    from export.predictor import open_predictor
    from tinybert_tf.predict import format_json, format_plain, read_texts

    texts = read_texts(args.texts, file=args.file,
                       text_column=args.text_column, stdin=sys.stdin)
    predictor = open_predictor(args.model, runtime=args.runtime,
                               sequence_length=args.sequence_length)
    show = format_json if args.json else format_plain
    for start in range(0, len(texts), args.batch_size):
        for prediction in predictor.predict(
                texts[start:start + args.batch_size]):
            print(show(prediction, top=args.top), flush=True)
    return 0


def main(argv=None):
    return console.run_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
