"""Framework-neutral helpers of the benchmarks: real text, RSS, statistics.

Imports neither torch nor TensorFlow, so the TF benchmarks and their
PyTorch peers (`torch_distill_step.py`, `textbrewer_step.py`,
`official_augment_speed.py`) get exactly the same inputs and the same
JSON conventions. The text is the real English that gensim ships as test
data (`tinybert_tf.assets.gensim_text_files()`): the Lee news corpus
(`lee_background.cor`, 300 articles) and a Wikipedia XML excerpt.

    python -c "import bench_common; print(bench_common.lee_sentences(2))"   # from benchmarks/

Every benchmark prints ONE JSON line on stdout (`emit`); progress goes to
stderr.
"""

import bz2
import json
import os
import platform
import random
import re
import resource
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tinybert_tf import assets  # noqa: E402  (pure Python: no TF import)

minilm_dir = assets.minilm_dir
glove_files = assets.glove_files
WIKI_FILE, LEE_FILE = assets.gensim_text_files()
TEXT_SOURCE = "lee_background.cor + enwiki excerpt (gensim test data)"

# A sentence ends at . ! or ? (optionally followed by a closing quote or
# bracket) and the next one starts with an upper-case letter, digit or quote.
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


# ---------------------------------------------------------------- real text

def split_sentences(text):
    return [s.strip() for s in _SENT_END.split(text) if s.strip()]


def lee_documents():
    """The 300 news articles of lee_background.cor, one string each."""
    with open(LEE_FILE, encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def lee_sentences(n=200, min_words=4, offset=0):
    """The first `n` sentences (>= min_words words) of lee_background.cor,
    in file order, after skipping `offset` of them."""
    sentences = [s for doc in lee_documents() for s in split_sentences(doc)
                 if len(s.split()) >= min_words]
    return sentences[offset:offset + n]


def wiki_documents(min_words=50):
    """Prose of the articles of gensim's Wikipedia excerpt (markup, lists,
    tables, headings, redirects and stubs dropped)."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    docs = []
    with bz2.open(WIKI_FILE) as f:
        for _title, text, _pageid in extract_pages(f):
            text = filter_wiki(text)
            if text.lstrip().upper().startswith("#REDIRECT"):
                continue
            text = re.sub(r"'{2,}", "", text)  # bold / italic quotes
            paragraphs = [re.sub(r"\s+", " ", p).strip() for p in text.split("\n")]
            text = " ".join(p for p in paragraphs if len(p.split()) >= 8
                            and not p.startswith(("*", "|", "=", "{", "!")))
            if len(text.split()) >= min_words:
                docs.append(text)
    return docs


def _pair(chunk):
    """(A, B) of consecutive sentences, or one long sentence cut in half."""
    if len(chunk) >= 2:
        return None
    words = chunk[0].split() if chunk else []
    if len(words) < 2:
        return ()
    cut = len(words) // 2
    return " ".join(words[:cut]), " ".join(words[cut:])


def distill_text_pairs(n, seed=0, target_words=110, short_seq_prob=0.1):
    """`n` (segment A, segment B) pairs of consecutive real sentences, shaped
    like BERT pre-training instances: about `target_words` words (a full
    128-token window after WordPiece), with probability `short_seq_prob` a
    shorter random length, A/B cut at a random sentence boundary; shuffled.
    Deterministic for a given seed."""
    rng = random.Random(seed)
    pairs = []
    for doc in lee_documents() + wiki_documents():
        sentences = split_sentences(doc)
        i = 0
        while i < len(sentences):
            target = target_words
            if rng.random() < short_seq_prob:
                target = rng.randint(4, target_words)
            chunk, words = [], 0
            while i < len(sentences) and words < target:
                chunk.append(sentences[i])
                words += len(sentences[i].split())
                i += 1
            single = _pair(chunk)
            if single is None:
                cut = rng.randint(1, len(chunk) - 1)
                pairs.append((" ".join(chunk[:cut]), " ".join(chunk[cut:])))
            elif single:
                pairs.append(single)
    rng.shuffle(pairs)
    if len(pairs) < n:
        pairs = pairs * (n // max(1, len(pairs)) + 1)
    return pairs[:n]


def word_count(texts):
    return sum(len(t.split()) for t in texts)


# ---------------------------------------------------------------- the official augmentation

def word_span(pieces, index):
    """Positions in `pieces` ([CLS] first) of the word-pieces of the
    `index`-th word (a word starts at a piece without '##'), as the
    official `_word_augment` finds them."""
    span, seen = [], -1
    for i in range(1, len(pieces)):
        if not pieces[i].startswith("##"):
            seen += 1
            if seen == index:
                span = [i]
            elif seen > index:
                break
        elif seen == index:
            span.append(i)
    return span


def generate(sentence, words, options, n, p, rng):
    """The official sentence building: `n` times, each word with options
    replaced by a random one with probability `p`; duplicates dropped by
    linear search. Returns [sentence, new sentences...]."""
    out = [sentence]
    for _ in range(n):
        new = list(words)
        for i in options:
            candidate = rng.choice(options[i])
            if rng.random() < p:
                new[i] = candidate
        text = " ".join(new)
        if text not in out:
            out.append(text)
    return out


# ---------------------------------------------------------------- flags

def add_step_args(ap):
    """Flags of every distillation-step benchmark (ours and its peers)."""
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps")
    ap.add_argument("--teacher", choices=["minilm", "bert-base"], default="minilm",
                    help="minilm: real all-MiniLM-L6-v2 (6L-384); bert-base: random 12L-768")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)


# ---------------------------------------------------------------- measurement

def peak_rss_mb():
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


def stats(xs):
    xs = list(xs)
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "mean": statistics.fmean(xs), "n": len(xs)}


def machine_info():
    cpu = platform.processor() or ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "logical_cpus": os.cpu_count(),
            "affinity_cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "loadavg_1m_at_start": os.getloadavg()[0]}


def round_floats(obj, ndigits=5):
    if isinstance(obj, float):
        return round(obj, ndigits)
    if isinstance(obj, dict):
        return {k: round_floats(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, ndigits) for v in obj]
    return obj


def emit(result):
    """Print the result and `machine_info()`, floats rounded, as ONE JSON
    line on stdout."""
    print(json.dumps(round_floats({**result, "machine": machine_info()})), flush=True)


def load_runs(path):
    """The JSON lines of a result file (other lines ignored)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.startswith("{")]
