"""All or nothing: the export's files appear in the output folder together.

`staged_directory` yields a staging folder next to the output folder; when
the block ends without an error the staging folder replaces the output
folder (an existing one is swapped out, then removed), otherwise it is
removed and the output folder stays as it was.

Example:

```python
import os
from export import staging
with staging.staged_directory("/tmp/staged") as folder:
    with open(os.path.join(folder, "a.txt"), "w") as f:
        f.write("all or nothing")
os.listdir("/tmp/staged")  # ['a.txt']
```
"""

import contextlib
import os
import shutil
import tempfile


def refuse_existing(output_dir, overwrite):
    if os.path.exists(output_dir) and not overwrite:
        raise FileExistsError(f"Output {output_dir} already exists; pass "
                              "overwrite=True (--overwrite) to replace it.")


@contextlib.contextmanager
def staged_directory(output_dir, prefix=".export-"):
    """A staging folder that becomes `output_dir` if the block succeeds."""
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield staging
        move_into_place(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def move_into_place(staging, output_dir):
    if os.path.exists(output_dir):
        old = output_dir + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output_dir, old)
        os.replace(staging, output_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, output_dir)
