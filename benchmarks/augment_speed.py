"""Speed of TinyBERT data augmentation: ours (batched) vs the official algorithm.

The TF counterpart of its PyTorch peer `official_augment_speed.py`: same
sentences (`bench_common.lee_sentences`: real news sentences of gensim's
lee_background.cor), same vocabulary (bert-base-uncased WordPiece, shipped
with all-MiniLM-L6-v2), same MLM shape (default BERT-base 12L-768, random
weights with seed 0: speed only), same GloVe (6B 50d, first 100k words),
N=20, K=15, p=0.4, and the same JSON field names, printed as ONE line.

    python benchmarks/augment_speed.py                        # 40 sentences, all modes
    python benchmarks/augment_speed.py --sentences 200        # the peer's default 200 (slow)
    python benchmarks/augment_speed.py --mlm-layers 6 --mlm-hidden 384   # MiniLM shape
    python benchmarks/augment_speed.py --modes float32,bfloat16          # ours only

Modes, run on the same sentences in the same process:
  official  the official per-word algorithm re-implemented here on OUR model
            in TF (not the PyTorch script): for every eligible word the
            sentence is word-pieced again, one MLM forward at batch 1 on
            "[CLS] masked [SEP] original [SEP]" with logits at EVERY position
            (as BertForMaskedLM), a full argsort of the vocabulary; GloVe: a
            float64 cosine against 100k words and a full argsort per word
            occurrence. The forward is one traced tf.function (dynamic
            shapes), so TF's eager overhead is not charged to it.
  float32   ours: `tinybert_tf.augment.Augmenter.augment` (all masked words of
            all sentences batched by length, head at the mask only, top-k in
            graph, GloVe once per word type, batched).
  bfloat16  ours with the encoder in bfloat16 (`AugmentConfig(dtype=...)`).
  *-masked  ours with the masked sentence alone as MLM input
            (`AugmentConfig(mlm_input="masked")`, about half the tokens; NOT
            the official input, so its candidates differ).

The machine is shared, so the modes are INTERLEAVED: the sentences are cut
into chunks of --chunk sentences and every mode runs on each chunk in turn;
a mode's time is the sum over chunks. Ours therefore batches only within a
chunk (a conservative measure: on a whole dataset its batches are fuller).
Candidates are compared across modes: official vs float32 (identical lists
expected) and float32 vs bfloat16 (how often bfloat16 changes a top-K set).
"""

import argparse
import os
import random
import sys
import time

import bench_common as common

MODES = ("official", "float32", "bfloat16", "float32-masked",
         "bfloat16-masked")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sentences", type=int, default=40,
                   help="real sentences of lee_background.cor (the peer's default: 200)")
    p.add_argument("--warmup-sentences", type=int, default=3,
                   help="untimed, taken after the timed ones")
    p.add_argument("--chunk", type=int, default=20,
                   help="sentences per interleaved chunk")
    p.add_argument("--modes", default="official,float32,bfloat16",
                   help=f"comma-separated, from {MODES}")
    p.add_argument("--mlm-layers", type=int, default=12)
    p.add_argument("--mlm-hidden", type=int, default=768)
    p.add_argument("--mlm-heads", type=int, default=12)
    p.add_argument("--mlm-ffn", type=int, default=None, help="default 4*hidden")
    p.add_argument("--N", type=int, default=20)
    p.add_argument("--M", type=int, default=15, help="K, candidates per word")
    p.add_argument("--p", type=float, default=0.4)
    p.add_argument("--glove-vocab", type=int, default=100000)
    p.add_argument("--tokens-per-batch", type=int, default=8192)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        p.error(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    args.mlm_ffn = args.mlm_ffn or 4 * args.mlm_hidden
    return args


class Timer:
    def __init__(self):
        self.total = {}
        self.calls = []

    def add(self, name, seconds):
        self.total[name] = self.total.get(name, 0.0) + seconds


class OfficialBatch1:
    """The official algorithm and cost structure on our TF model (see top)."""

    def __init__(self, mlm, vocab_file, glove, glove_vocab, M, N, p, timer):
        import numpy as np
        import tensorflow as tf
        from tokenizers import BertWordPieceTokenizer

        from tinybert_tf.augment.words import WordSplitter, is_replaceable
        self.np = np
        self.is_replaceable = is_replaceable
        self.words = WordSplitter().words  # BERT basic tokenizer
        self.wordpiece = BertWordPieceTokenizer(vocab_file, lowercase=True)
        self.M, self.N, self.p, self.timer = M, N, p, timer
        words = glove.index_to_key[:glove_vocab]
        matrix = np.asarray(glove.vectors[:glove_vocab], np.float64)
        self.emb_norm = (matrix.T / np.sqrt((matrix ** 2).sum(1))).T
        self.glove_vocab = {w: i for i, w in enumerate(words)}
        self.glove_words = words
        self.vocab = self.wordpiece.get_vocab()
        self.id_to_piece = {i: t for t, i in self.vocab.items()}
        spec = tf.TensorSpec([None, None], tf.int32)

        @tf.function(input_signature=[spec, spec])
        def logits(token_ids, segment_ids):
            length = tf.shape(token_ids)[1]
            return mlm({"token_ids": token_ids, "segment_ids": segment_ids,
                        "padding_mask": tf.ones_like(token_ids),
                        "mask_positions": tf.range(length)[None]},
                       training=False)

        self.logits = logits
        self.candidate_table = {}

    def glove_candidates(self, word):
        t0 = time.perf_counter()
        index = self.glove_vocab.get(word)
        out = []
        if index is not None:
            sims = self.emb_norm @ self.emb_norm[index]
            sims[index] = -self.np.inf
            out = [self.glove_words[i] for i in self.np.argsort(-sims)[:self.M]]
        self.timer.add("glove", time.perf_counter() - t0)
        return out

    def mlm_candidates(self, sentence, pieces, position):
        t0 = time.perf_counter()
        if position >= 512:
            return []
        original = ["[CLS]"] + self.wordpiece.encode(
            sentence, add_special_tokens=False).tokens
        first = len(original)
        tokens = (pieces + ["[SEP]"] + original[1:] + ["[SEP]"])[:512]
        first = min(first, 511) if len(tokens) == 512 else first
        ids = [self.vocab.get(t, self.vocab["[UNK]"]) for t in tokens]
        segments = [0] * (first + 1) + [1] * (len(tokens) - first - 1)
        t1 = time.perf_counter()
        logits = self.logits(self.np.array([ids], "int32"),
                             self.np.array([segments], "int32")).numpy()
        t2 = time.perf_counter()
        top = self.np.argsort(-logits[0, position])[:self.M]
        out = [self.id_to_piece[i] for i in top.tolist()
               if not self.id_to_piece[i].startswith("##")]
        t3 = time.perf_counter()
        self.timer.add("mlm_forward", t2 - t1)
        self.timer.add("mlm_other", (t1 - t0) + (t3 - t2))
        self.timer.calls.append(len(tokens))
        return out

    def word_candidates(self, sentence, index, word):
        t0 = time.perf_counter()
        pieces = ["[CLS]"] + self.wordpiece.encode(
            sentence, add_special_tokens=False).tokens
        span = common.word_span(pieces, index)
        self.timer.add("wordpiece_lookup", time.perf_counter() - t0)
        if len(span) == 1:
            pieces[span[0]] = "[MASK]"
            return self.mlm_candidates(sentence, pieces, span[0]), "mlm"
        return self.glove_candidates(word), "glove"

    def augment(self, sentence, rng):
        words = self.words(sentence)
        options, sources = {}, {}
        for i, word in enumerate(words):
            if self.is_replaceable(word):
                found, sources[i] = self.word_candidates(sentence, i, word)
                options[i] = found or [word]
        self.candidate_table[sentence] = (options, sources)
        t0 = time.perf_counter()
        out = common.generate(sentence, words, options, self.N, self.p, rng)
        self.timer.add("generate", time.perf_counter() - t0)
        return out


def timed_augmenter(augmenter, timer, table):
    """Times the augmenter's masked-LM and GloVe calls; records candidates."""
    masked_lm, glove = augmenter.masked_lm, augmenter.glove
    candidates = augmenter.candidates

    def mlm_call(requests, progress=False):
        t0 = time.perf_counter()
        out = masked_lm(requests, progress)
        timer.add("mlm_total", time.perf_counter() - t0)
        timer.calls.extend(masked_lm.row_length(len(pieces))
                           for pieces, _ in requests)
        return out

    def glove_call(words):
        t0 = time.perf_counter()
        out = glove(words)
        timer.add("glove", time.perf_counter() - t0)
        return out

    def record(sentences):
        found = candidates(sentences)
        table.update(zip(sentences, found))
        return found

    augmenter.masked_lm, augmenter.glove = mlm_call, glove_call
    augmenter.candidates = record
    return augmenter


def rates(total, sentences, counts, timer, per_sentence):
    mlm_time = timer.total.get("mlm_total", timer.total.get(
        "mlm_forward", 0.0) + timer.total.get("mlm_other", 0.0))
    glove_time = timer.total.get("glove", 0.0)
    n_mlm = counts["mlm_words"]
    return {
        "counts": counts,
        "words_per_sentence": counts["words"] / sentences,
        "mean_mlm_seq_len": (sum(timer.calls) / len(timer.calls)
                             if timer.calls else None),
        "total_s": total,
        "sentences_per_s": sentences / total,
        "words_per_s": counts["words"] / total,
        "candidate_words_per_s": counts["candidate_words"] / total,
        "augmented_sentences_per_s": counts["augmented_sentences"] / total,
        "mlm_forwards_per_s": n_mlm / mlm_time if n_mlm else None,
        "mlm_ms_per_call": 1e3 * mlm_time / n_mlm if n_mlm else None,
        "time_s": {"mlm_total": mlm_time, "glove": glove_time,
                   **{k: v for k, v in timer.total.items()
                      if k not in ("mlm_total", "glove")}},
        "time_share": {"mlm": mlm_time / total, "glove": glove_time / total,
                       "rest": 1.0 - (mlm_time + glove_time) / total},
        "per_chunk_s": common.stats(per_sentence) if per_sentence else None,
    }


def build_mlm(args, vocab_size):
    import keras
    from tinybert_tf.backbone import dummy_inputs
    from tinybert_tf.config import BertConfig
    from tinybert_tf.backbone import BertBackbone
    from tinybert_tf.heads import BertMaskedLM
    keras.utils.set_random_seed(args.seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=args.mlm_hidden,
                        num_layers=args.mlm_layers, num_heads=args.mlm_heads,
                        intermediate_size=args.mlm_ffn)
    mlm = BertMaskedLM(BertBackbone(config))
    inputs = dummy_inputs()
    inputs["mask_positions"] = keras.ops.zeros((1, 1), "int32")
    mlm(inputs)
    return mlm, config


def compare(official, ours16, ours32):
    """Agreement of candidate lists between modes (per candidate word)."""
    out = {}
    if official and ours32:
        same = total = same_set = 0
        for sentence, (options, _) in official.items():
            for i, found in options.items():
                total += 1
                same += found == ours32[sentence].options[i]
                same_set += set(found) == set(ours32[sentence].options[i])
        out["official_vs_float32"] = {"words": total, "identical_lists": same,
                                      "identical_sets": same_set}
    if ours16 and ours32:
        changed = total = 0
        overlap = []
        for sentence, entry in ours32.items():
            for i, found in entry.options.items():
                if entry.sources[i] != "mlm":
                    continue
                other = ours16[sentence].options[i]
                total += 1
                changed += set(found) != set(other)
                overlap.append(len(set(found) & set(other)) /
                               max(len(set(found) | set(other)), 1))
        out["bfloat16_vs_float32"] = {
            "mlm_words": total, "changed_sets": changed,
            "changed_fraction": changed / total if total else None,
            "mean_jaccard": sum(overlap) / len(overlap) if overlap else None}
    return out


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from tinybert_tf.augment import AugmentConfig, Augmenter, load_glove
    from tinybert_tf.checkpoint import read_vocabulary

    t0 = time.perf_counter()
    vocab_file = os.path.join(common.minilm_dir(), "vocab.txt")
    vocabulary = read_vocabulary(vocab_file)
    mlm, config = build_mlm(args, len(vocabulary))
    setup_model_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    glove = load_glove(None, limit=args.glove_vocab)
    setup_glove_s = time.perf_counter() - t0

    sentences = common.lee_sentences(args.sentences)
    warm = common.lee_sentences(args.warmup_sentences, offset=args.sentences)
    chunks = [sentences[i:i + args.chunk]
              for i in range(0, len(sentences), args.chunk)]

    runners, timers, tables = {}, {}, {}
    for mode in args.modes:
        timers[mode] = Timer()
        if mode == "official":
            runners[mode] = OfficialBatch1(mlm, vocab_file, glove,
                                           args.glove_vocab, args.M, args.N,
                                           args.p, timers[mode])
        else:
            dtype, _, masked = mode.partition("-")
            aug_config = AugmentConfig(
                replace_prob=args.p, num_samples=args.N, top_k=args.M,
                glove_vocab_size=args.glove_vocab, dtype=dtype,
                mlm_input="masked" if masked else "pair", seed=args.seed,
                tokens_per_batch=args.tokens_per_batch, progress=False)
            runners[mode] = Augmenter(aug_config, mlm, glove, vocabulary)
            tables[mode] = {}

    # Warm-up (untimed): traces the tf.functions, touches every code path.
    rng = random.Random(args.seed)
    for mode, runner in runners.items():
        if mode == "official":
            for s in warm:
                runner.augment(s, rng)
            runner.candidate_table.clear()
        else:
            runner.augment(warm)
        timers[mode].__init__()
    for mode in runners:
        if mode != "official":
            timed_augmenter(runners[mode], timers[mode], tables[mode])

    totals = {mode: 0.0 for mode in runners}
    per_chunk = {mode: [] for mode in runners}
    counts = {mode: None for mode in runners}
    rss_before = common.current_rss_mb()
    for number, chunk in enumerate(chunks):
        for mode, runner in runners.items():
            t0 = time.perf_counter()
            if mode == "official":
                outputs = [runner.augment(s, rng) for s in chunk]
            else:
                outputs = runner.augment(chunk).counts
            elapsed = time.perf_counter() - t0
            totals[mode] += elapsed
            per_chunk[mode].append(elapsed)
            counts[mode] = _add_counts(counts[mode], mode, outputs, runner,
                                       chunk)
        print(f"[chunk {number + 1}/{len(chunks)}] " + ", ".join(
            f"{m} {totals[m]:.1f}s" for m in runners), file=sys.stderr,
            flush=True)
    results = {mode: rates(totals[mode], len(sentences), counts[mode],
                           timers[mode], per_chunk[mode])
               for mode in runners}
    official = runners["official"].candidate_table if "official" in runners \
        else None
    agreement = compare(official, tables.get("bfloat16"),
                        tables.get("float32"))
    headline = "float32" if "float32" in results else args.modes[-1]
    speedups = {}
    if "official" in results:
        speedups = {m: results["official"]["total_s"] / r["total_s"]
                    for m, r in results.items() if m != "official"}
    result = {
        "bench": "tf_augment_speed",
        "framework": f"tensorflow {tf.__version__} + keras {keras.__version__}",
        "threads": args.threads,
        "mlm": {"layers": args.mlm_layers, "hidden": args.mlm_hidden,
                "heads": args.mlm_heads, "ffn": args.mlm_ffn,
                "vocab": config.vocab_size, "params": mlm.count_params(),
                "weights": f"random init, seed {args.seed} (speed only)",
                "mode": f"ours, {headline} (modes: {', '.join(results)})"},
        "params": {"N": args.N, "M": args.M, "p": args.p,
                   "glove_vocab": args.glove_vocab,
                   "tokens_per_batch": args.tokens_per_batch,
                   "chunk_sentences": args.chunk},
        "sentences": len(sentences),
        **results[headline],
        "modes": results,
        "speedup_vs_official": speedups,
        "candidate_agreement": agreement,
        "setup_model_s": setup_model_s,
        "setup_glove_s": setup_glove_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": common.peak_rss_mb(),
    }
    common.emit(result)
    return result


def _add_counts(total, mode, outputs, runner, chunk):
    if mode == "official":
        table = runner.candidate_table
        options = [table[s] for s in chunk]
        new = {"words": sum(len(runner.words(s)) for s in chunk),
               "candidate_words": sum(len(o) for o, _ in options),
               "mlm_words": sum(list(s.values()).count("mlm")
                                for _, s in options),
               "glove_words": sum(list(s.values()).count("glove")
                                  for _, s in options),
               "augmented_sentences": sum(len(o) - 1 for o in outputs)}
    else:
        new = {k: outputs[k] for k in ("words", "candidate_words",
                                       "mlm_words", "glove_words")}
        new["augmented_sentences"] = (outputs["augmented_examples"]
                                      - outputs["examples"])
    if total is None:
        return new
    return {k: total[k] + new[k] for k in total}


if __name__ == "__main__":
    main()
