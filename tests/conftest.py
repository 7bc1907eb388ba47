import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The caches of the runs under test (general students, corpora,
# augmentation, teacher logits) stay out of the user's.
os.environ["TINYBERT_TF_CACHE"] = tempfile.mkdtemp(prefix="tinybert-tf-tests-")
atexit.register(shutil.rmtree, os.environ["TINYBERT_TF_CACHE"], True)
