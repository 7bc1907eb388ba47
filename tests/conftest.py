import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The caches of the runs under test (general students, corpora,
# augmentation, teacher logits) stay out of the user's.
os.environ["TINYBERT_TF_CACHE"] = tempfile.mkdtemp(prefix="tinybert-tf-tests-")
atexit.register(shutil.rmtree, os.environ["TINYBERT_TF_CACHE"], True)


def pytest_collection_modifyitems(items):
    """The `slow` modules first: `make test` hands whole modules to its
    workers (pytest-xdist, --dist loadfile) in this order, and a slow module
    handed out last would run alone while the other workers wait."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
