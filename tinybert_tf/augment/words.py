"""Words of a sentence, which of them may be replaced, and their word-pieces.

Word split = BERT's basic tokenizer (clean up, lower-case and strip accents
for uncased models, split on whitespace and punctuation), taken from Hugging
Face `tokenizers` (BertNormalizer + BertPreTokenizer), the same code as
BertTokenizer's. Word-pieces come from the masked LM's own vocabulary.

Example:
>>> from tinybert_tf.augment.words import WordSplitter, is_replaceable
>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat",
...          "sat", "play", "##ing"]
>>> splitter = WordSplitter(vocab)
>>> words = splitter.words("The cat, playing!")
>>> words
['the', 'cat', ',', 'playing', '!']
>>> [w for w in words if is_replaceable(w)]
['cat', 'playing']
>>> splitter.pieces([words])[0]
[[5], [6], [1], [8, 9], [1]]
"""

import re

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from tinybert_tf.augment.config import STOP_WORDS

_LETTERS = re.compile(r"[a-z]+")
SPECIAL_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[MASK]")


def is_replaceable(word, stop_words=STOP_WORDS):
    """Official rule: only letters a-z (after lower-casing), not a stop word."""
    word = word.lower()
    return bool(_LETTERS.fullmatch(word)) and word not in stop_words


class WordSplitter:
    """BERT basic tokenization plus the word-pieces of each word.

    Args:
        vocabulary: list of word-pieces (the masked LM's), or None when only
            `words` is needed.
        lowercase: uncased BERT (lower-case and strip accents).
    """

    def __init__(self, vocabulary=None, lowercase=True):
        self.lowercase = lowercase
        self._normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True,
            strip_accents=lowercase, lowercase=lowercase)
        self._pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self.vocabulary = None if vocabulary is None else list(vocabulary)
        self._wordpiece = None
        if self.vocabulary is not None:
            index = {piece: i for i, piece in enumerate(self.vocabulary)}
            missing = [t for t in SPECIAL_TOKENS if t not in index]
            if missing:
                raise ValueError(f"The masked LM's vocabulary lacks the "
                                 f"special tokens {missing}.")
            self.special_ids = {t: index[t] for t in SPECIAL_TOKENS}
            # Words arrive normalised and split, so the word-piece model runs
            # alone (no normaliser or pre-tokenizer of its own).
            self._wordpiece = Tokenizer(models.WordPiece(
                index, unk_token="[UNK]", max_input_chars_per_word=100))

    def words(self, text):
        normal = self._normalizer.normalize_str(text)
        return [word for word, _ in self._pre_tokenizer.pre_tokenize_str(normal)]

    def pieces(self, sentences):
        """Word-piece ids of each word: [sentence][word] -> list of ids."""
        if self._wordpiece is None:
            raise ValueError("WordSplitter has no vocabulary: pass one to get "
                             "word-pieces.")
        out = []
        encodings = self._wordpiece.encode_batch(
            [list(words) for words in sentences], is_pretokenized=True,
            add_special_tokens=False)
        for words, encoding in zip(sentences, encodings):
            per_word = [[] for _ in words]
            for piece, word in zip(encoding.ids, encoding.word_ids):
                per_word[word].append(piece)
            out.append(per_word)
        return out
