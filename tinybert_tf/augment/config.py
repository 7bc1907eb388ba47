"""`AugmentConfig`: every knob of TinyBERT's data augmentation in one place.

Example:
>>> from tinybert_tf.augment.config import AugmentConfig
>>> AugmentConfig.for_task("MRPC").num_samples
30
>>> AugmentConfig().replace_prob, AugmentConfig().top_k
(0.4, 15)
"""

import dataclasses

from tinybert_tf.choices import DTYPES, MLM_INPUTS

# The official stop-word list (TinyBERT/data_augmentation.py): NLTK's English
# list without the eight wh-words, plus "'s" and "'re"; 173 entries. Only
# [a-z]+ words are ever tested against it, so the apostrophe entries never
# match; they are kept so the list is the official one.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours
yourself yourselves he him his himself she she's her hers herself it it's its
itself they them their theirs themselves this that that'll these those am is
are was were be been being have has had having do does did doing a an the and
but if or because as until while of at by for with about against between into
through during before after above below to from up down in out on off over
under again further then once here there all any both each few more most other
some such no nor not only own same so than too very s t can will just don
don't should should've now d ll m o re ve y ain aren aren't couldn couldn't
didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn
wasn't weren weren't won won't wouldn wouldn't 's 're
""".split())

# N_a per GLUE task in the official script (its default is 30).
TASK_NUM_SAMPLES = {"cola": 30, "mnli": 10, "mrpc": 30, "sst2": 20,
                    "stsb": 30, "qqp": 10, "qnli": 20, "rte": 30}

# Fields that only change speed or display, never the augmented text; they
# are left out of the disk-cache key.
_SPEED_ONLY = ("tokens_per_batch", "length_multiple", "examples_per_chunk",
               "progress")


def task_key(name):
    """'SST-2', 'sst_2', 'glue/sst2' -> 'sst2'."""
    return name.lower().rsplit("/", 1)[-1].replace("-", "").replace("_", "")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """TinyBERT data augmentation (paper Alg. 1, official code defaults).

    Args:
        replace_prob: p_t, the probability that a draw replaces an eligible
            word by one of its candidates.
        num_samples: N_a, draws per sentence (duplicates are then dropped;
            the original is always kept). `for_task` gives the official
            per-task values.
        top_k: K, candidates per word: the masked LM's top-K word-pieces
            (pieces starting with ## are then dropped) or the K nearest
            GloVe words by cosine.
        glove_vocab_size: GloVe search (and look-up) is restricted to the
            first this-many words of the vectors (the most frequent).
        mlm_input: "pair" = "[CLS] masked [SEP] original [SEP]" with segment
            ids 0/1 (official); "masked" = "[CLS] masked [SEP]".
        max_seq_length: longest masked-LM input; a longer sentence is cut to a
            window of word-pieces around the masked word (capped by the
            model's position table).
        lowercase: BERT basic tokenization lower-cases and strips accents
            (uncased models).
        stop_words: words never replaced.
        keep_unchanged: keep a draw that replaced nothing: the basic-tokenized
            original, re-joined with spaces (lower-cased, punctuation split).
            The official code keeps it.
        seed: every example draws from its own generator seeded with
            (seed, example index, column), so results do not depend on the
            batching, the order of work or the cache.
        dtype: "bfloat16" runs the masked LM's encoder in bfloat16 (the head
            and the top-k stay float32); faster on CPUs with AVX512-BF16/AMX
            and on GPUs, and may change a few candidate sets.
        tokens_per_batch: masked-LM batch size in tokens (rows x padded length).
        examples_per_chunk: examples whose candidates are searched together
            (bounds memory; counts of distinct sentences are per chunk).
        length_multiple: masked-LM inputs are padded to a multiple of this.
        progress: show tqdm progress bars (on a terminal; never in a log
            file).
    """

    replace_prob: float = 0.4
    num_samples: int = 20
    top_k: int = 15
    glove_vocab_size: int = 100_000
    mlm_input: str = "pair"
    max_seq_length: int = 512
    lowercase: bool = True
    stop_words: frozenset = STOP_WORDS
    keep_unchanged: bool = True
    seed: int = 0
    dtype: str = "float32"
    tokens_per_batch: int = 8192
    examples_per_chunk: int = 20_000
    length_multiple: int = 8
    progress: bool = True

    def __post_init__(self):
        if not 0.0 <= self.replace_prob <= 1.0:
            raise ValueError(f"AugmentConfig.replace_prob must be in [0, 1], "
                             f"got {self.replace_prob}.")
        for name in ("num_samples", "top_k", "glove_vocab_size",
                     "tokens_per_batch", "length_multiple",
                     "examples_per_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"AugmentConfig.{name} must be >= 1, got "
                                 f"{getattr(self, name)}.")
        if self.mlm_input not in MLM_INPUTS:
            raise ValueError(f"AugmentConfig.mlm_input must be one of "
                             f"{MLM_INPUTS}, got {self.mlm_input!r}.")
        shortest = 5 if self.mlm_input == "pair" else 3
        if self.max_seq_length < shortest:
            raise ValueError(
                f"AugmentConfig.max_seq_length={self.max_seq_length} is too "
                f"short: mlm_input={self.mlm_input!r} needs >= {shortest}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"AugmentConfig.dtype must be one of {DTYPES}, "
                             f"got {self.dtype!r}.")
        if not isinstance(self.stop_words, frozenset):
            object.__setattr__(self, "stop_words", frozenset(self.stop_words))

    @classmethod
    def for_task(cls, task, **overrides):
        """The official N_a of a GLUE task ("SST-2", "mnli", ...)."""
        key = task_key(task)
        if key not in TASK_NUM_SAMPLES:
            raise ValueError(f"No official augmentation preset for task "
                             f"{task!r}; known: {sorted(TASK_NUM_SAMPLES)}.")
        return cls(**{"num_samples": TASK_NUM_SAMPLES[key], **overrides})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def output_fields(self):
        """The fields that determine the augmented text (the cache key)."""
        values = dataclasses.asdict(self)
        for name in _SPEED_ONLY:
            values.pop(name)
        values["stop_words"] = sorted(values["stop_words"])
        return values
