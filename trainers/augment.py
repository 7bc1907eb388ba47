"""TinyBERT data augmentation of a text file (`tinybert_tf.augment`).

    python -m trainers.augment                   # 200 Lee news sentences, GloVe only
    python -m trainers.augment --input train.tsv --text-column sentence \
        --output train_aug.tsv --task sst2 --mlm path/to/bert-base-uncased
    python -m trainers.augment --input pairs.jsonl --text-column premise \
        --text-pair-column hypothesis --output pairs_aug.jsonl --n 10

Input: .tsv (GLUE style, no quoting), .csv, .jsonl/.json with a header or
keys, or .txt (one text per line). Every row of the output is a row of the
input with its text column(s) replaced: the original row first, then its
variants; the other columns (labels, ids) are copied. The output format
follows the output file's extension.

With no --mlm the augmentation uses GloVe for every word (it says so once):
no offline package carries a masked-LM head. --mlm takes a Hugging Face
BertForMaskedLM directory or hub id, or a keras-hub BERT preset.

Results are cached under --cache-dir (default ~/.cache/tinybert_tf/augment,
or $TINYBERT_TF_CACHE/augment) by a hash of the texts, the parameters and the
models; a re-run is read back from there.
"""

import argparse
import csv
import json
import os
import re
import sys

from tinybert_tf import console, files
from trainers import common

DEFAULT_SENTENCES = 200
DEFAULT_OUTPUT_DIR = os.path.join("outputs", "augment")

# A sentence ends at . ! or ? (maybe followed by a closing quote or bracket)
# and the next one starts with a capital, digit or quote; the shared
# reference benchmark splits the Lee corpus the same way.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def parse_args(argv=None):
    from tinybert_tf.choices import DTYPES, MLM_INPUTS
    p = argparse.ArgumentParser(
        prog="python -m trainers.augment",
        description="TinyBERT data augmentation (masked-LM and GloVe word "
                    "replacement) of a text file.")
    io = p.add_argument_group("input and output")
    io.add_argument("--input", default=None,
                    help="file to augment (.tsv/.csv/.jsonl/.json/.txt); "
                         f"default: the first {DEFAULT_SENTENCES} sentences "
                         "of gensim's lee_background.cor")
    io.add_argument("--text-column", default="text")
    io.add_argument("--text-pair-column", default=None,
                    help="second text of pair tasks (augmented separately)")
    io.add_argument("--output", default=None,
                    help=f"default: {DEFAULT_OUTPUT_DIR}/<input>_aug<ext>")
    io.add_argument("--limit", type=int, default=None,
                    help="augment only the first N rows")
    models = p.add_argument_group("models")
    models.add_argument("--mlm", default=None,
                        help="masked-LM checkpoint; default none (GloVe only)")
    models.add_argument("--vocab", default=None,
                        help="the masked LM's vocab.txt when its checkpoint "
                             "has none")
    models.add_argument("--glove", default=None,
                        help="GloVe .txt / word2vec / gensim .kv file "
                             "(default: offline GloVe 6B 50d package)")
    algo = p.add_argument_group("algorithm (defaults: the paper's)")
    algo.add_argument("--task", default=None,
                      help="GLUE task name: its official N (e.g. sst2 -> 20)")
    algo.add_argument("--n", type=int, default=None,
                      help="N_a, draws per text (default 20)")
    algo.add_argument("--p", type=float, default=0.4,
                      help="p_t, replacement probability")
    algo.add_argument("--k", type=int, default=15, help="K, candidates")
    algo.add_argument("--glove-vocab-size", type=int, default=100_000)
    algo.add_argument("--mlm-input", default="pair", choices=MLM_INPUTS,
                      help="pair: [CLS] masked [SEP] original [SEP] (official)")
    algo.add_argument("--max-seq-length", type=int, default=512)
    algo.add_argument("--cased", action="store_true",
                      help="cased masked LM (no lower-casing)")
    algo.add_argument("--drop-unchanged", action="store_true",
                      help="drop draws that replaced nothing")
    algo.add_argument("--seed", type=int, default=0)
    run = p.add_argument_group("run")
    run.add_argument("--dtype", default="float32", choices=DTYPES)
    run.add_argument("--tokens-per-batch", type=int, default=8192)
    run.add_argument("--cache-dir", default=None,
                     help="result cache (default ~/.cache/tinybert_tf/augment)")
    run.add_argument("--no-cache", action="store_true")
    run.add_argument("--threads", type=int, default=None,
                     help="TensorFlow intra-op threads (default: all cores)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    console.add_verbose_flag(run)
    return p.parse_args(argv)


def check_args(args):
    """Refuses, before any model is loaded, a flag value that cannot make a
    run, a missing --input or --glove, and an --output that is the --input."""
    common.check_flags(
        args, at_least={"n": 1, "limit": 1, "k": 1, "glove_vocab_size": 1,
                        "max_seq_length": 5 if args.mlm_input == "pair" else 3,
                        "tokens_per_batch": 1, "threads": 1},
        fractions=("p",))
    common.check_files(args, ("input", "glove", "vocab"))
    if args.input is not None:
        _kind(args.input)
    if args.output is not None:
        if os.path.isdir(args.output):
            raise IsADirectoryError(f"--output {args.output} is a folder; "
                                    "give the file to write.")
        _kind(args.output)
        if args.input is not None and os.path.realpath(
                args.output) == os.path.realpath(args.input):
            raise ValueError(f"--output {args.output} is the --input file: "
                             "augmenting would replace the original; choose "
                             "another --output.")


# ------------------------------------------------------------------ files

def lee_sentences(count=DEFAULT_SENTENCES, min_words=4):
    """The first `count` sentences (>= min_words words) of lee_background.cor."""
    from tinybert_tf import assets
    path = assets.gensim_text_files()[1]
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            for sentence in _SENTENCE_END.split(line.strip()):
                sentence = sentence.strip()
                if len(sentence.split()) >= min_words:
                    out.append(sentence)
                    if len(out) == count:
                        return out
    return out


def read_rows(path):
    """(column names, list of row dicts) of a .tsv/.csv/.jsonl/.json/.txt."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Input file not found: {path}")
    kind = _kind(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        if kind == "txt":
            rows = [{"text": line.rstrip("\r\n")} for line in f if line.strip()]
            return ["text"], rows
        if kind in ("tsv", "csv"):
            # TSV as GLUE and the official readers: no quoting.
            reader = csv.DictReader(
                f, delimiter="\t" if kind == "tsv" else ",",
                quoting=csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL)
            return list(reader.fieldnames or []), list(reader)
        text = f.read()
    if text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {number}: not valid JSON "
                                     f"({error}).") from None
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{path}: every JSON row must be an object.")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return columns, rows


def write_rows(path, columns, rows):
    """Writes the rows in the format of `path`'s extension, all or nothing
    (a temporary file renamed into place)."""
    kind = _kind(path)
    with files.staged_file(path, newline="") as f:
        if kind == "jsonl" or kind == "json":
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif kind == "txt":
            for row in rows:
                f.write(_one_line(row[columns[0]]) + "\n")
        else:
            delimiter = "\t" if kind == "tsv" else ","
            # TSV: no quoting at all (quotechar None), as GLUE files.
            quoting = dict(quoting=csv.QUOTE_NONE, quotechar=None) if (
                kind == "tsv") else {}
            writer = csv.DictWriter(f, columns, delimiter=delimiter,
                                    extrasaction="ignore", **quoting)
            writer.writeheader()
            for row in rows:
                if kind == "tsv":  # no quoting: tabs and newlines become spaces
                    row = {k: _one_line(v) for k, v in row.items()}
                writer.writerow(row)


def _one_line(value):
    return re.sub(r"[\t\r\n]+", " ", "" if value is None else str(value))


def _kind(path):
    name = path.lower()
    for kind in ("tsv", "csv", "jsonl", "json", "txt", "cor"):
        if name.endswith("." + kind):
            return "txt" if kind == "cor" else kind
    raise ValueError(f"{path}: unsupported file type; use .tsv, .csv, .jsonl, "
                     ".json or .txt.")


def texts_of(rows, column, path):
    texts = []
    for number, row in enumerate(rows, start=1):
        if column not in row:
            raise ValueError(f"{path}: row {number} has no column {column!r}; "
                             f"columns: {sorted(row)}.")
        value = row[column]
        texts.append("" if value is None else str(value))
    return texts


# ------------------------------------------------------------------ main

def build_config(args):
    from tinybert_tf.augment import AugmentConfig
    fields = dict(replace_prob=args.p, top_k=args.k,
                  glove_vocab_size=args.glove_vocab_size,
                  mlm_input=args.mlm_input, max_seq_length=args.max_seq_length,
                  lowercase=not args.cased,
                  keep_unchanged=not args.drop_unchanged, seed=args.seed,
                  dtype=args.dtype, tokens_per_batch=args.tokens_per_batch,
                  progress=not args.quiet)
    if args.n is not None:
        fields["num_samples"] = args.n
    if args.task is not None and args.n is None:
        return AugmentConfig.for_task(args.task, **fields)
    return AugmentConfig(**fields)


def augment_file(args):
    """Augments --input into --output; returns the summary (counts)."""
    import logging
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.threads:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from tinybert_tf.augment import augment_dataset, default_cache_dir

    if args.input is None:
        columns = ["text"]
        rows = [{"text": s} for s in lee_sentences()]
        output = args.output or os.path.join(
            DEFAULT_OUTPUT_DIR, f"lee_background_{len(rows)}_aug.tsv")
        text_column, pair_column = "text", None
    else:
        columns, rows = read_rows(args.input)
        stem, ext = os.path.splitext(os.path.basename(args.input))
        output = args.output or os.path.join(DEFAULT_OUTPUT_DIR,
                                             f"{stem}_aug{ext}")
        if os.path.realpath(output) == os.path.realpath(args.input):
            raise ValueError(f"The output {output} would be the --input "
                             "file; pass another --output.")
        text_column, pair_column = args.text_column, args.text_pair_column
        if _kind(args.input) == "txt":
            text_column = "text"
    if args.limit:
        rows = rows[:args.limit]
    if not rows:
        raise ValueError(f"{args.input}: no rows to augment.")
    source = args.input or "lee_background.cor"
    text_a = texts_of(rows, text_column, source)
    text_b = None if pair_column is None else texts_of(rows, pair_column,
                                                       source)
    cache_dir = None if args.no_cache else (args.cache_dir or
                                            default_cache_dir())
    result = augment_dataset(text_a, text_b, None, build_config(args),
                             mlm=args.mlm, glove=args.glove,
                             cache_dir=cache_dir, vocabulary=args.vocab)
    out_rows = []
    for j, example in enumerate(result.source_index):
        row = dict(rows[example])
        row[text_column] = result.text_a[j]
        if pair_column is not None:
            row[pair_column] = result.text_b[j]
        out_rows.append(row)
    write_rows(output, columns, out_rows)
    return {"input": source, "output": os.path.abspath(output),
            **result.counts}


def run(args):
    print(json.dumps(augment_file(args)), flush=True)
    return 0


def main(argv=None):
    return console.run_main(parse_args, common.checked(check_args, run), argv)


if __name__ == "__main__":
    sys.exit(main())
