"""What the command lines print besides their own output: quiet by default.

Every command line (trainers.*, export.tflite) calls `setup(args.verbose)`
right after parsing its flags, before anything imports TensorFlow. Unless
`--verbose` (`add_verbose_flag`) or `TINYBERT_TF_VERBOSE=1` asks for them,
it keeps from the console:

- TensorFlow's C++ logging (`TF_CPP_MIN_LOG_LEVEL=3`: the cuInit error of a
  machine without CUDA, cpu_feature_guard, TFRecord notices, ...), unless
  the user set that variable;
- the lines the TensorFlow libraries print while they load, before that
  variable is read (absl's "All log messages before absl::InitializeLog()",
  oneDNN's notice, cudart_stub's "Could not find cuda drivers"): file
  descriptor 2 goes to a temporary file while `tensorflow` is first
  imported, wherever that happens (an import hook; TensorFlow is not
  imported here), and is replayed if the import fails;
- what native libraries that ignore that variable print where the code
  that calls them says so (`native_output_captured`: LiteRT's and
  MediaPipe's "Created TensorFlow Lite XNNPACK delegate for CPU");
- the Python warnings of the dependencies (the project's own stay on;
  `python -W` / `PYTHONWARNINGS` win) and their loggers below ERROR.

Nothing else changes: no device is hidden (a GPU is used as before) and
numerics are untouched (oneDNN stays on). The setting is kept in the
environment, so subprocesses (trainers.pipeline's stages) inherit it.

`run_main(parse_args, run)` is the `main()` of every command line: the
console set up, then one `error: ...` line and exit status 2 for a mistake
the user can fix (a bad flag, input, file or environment), exit status 130
on Ctrl-C, exit status 1 and its message for a `RunStopped` (a diverged
loss), and for anything else the traceback, said to be a bug of ours.

`interactive()` says whether a stream is a terminal: progress bars are
drawn there, and become one line per epoch or stage in a log file or CI
(`fit_verbose()`, the `verbose` of Keras `fit`).
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
import traceback
import warnings

VERBOSE_ENV = "TINYBERT_TF_VERBOSE"
# Marks a TF_CPP_MIN_LOG_LEVEL that `setup` set (not the user), so that a
# verbose subprocess of a quiet process can take it back.
_SET_BY_US_ENV = "TINYBERT_TF_QUIETED_TF_LOG"
OWN_PACKAGES = ("tinybert_tf", "trainers", "export")
# Python loggers of the dependencies (trainers.augment logs INFO and up).
DEPENDENCY_LOGGERS = ("tensorflow", "absl", "keras", "keras_hub", "gensim",
                      "smart_open", "tensorflow_datasets", "huggingface_hub",
                      "urllib3", "filelock", "h5py", "matplotlib", "PIL")
# What a user can fix: our own checks raise these with a message naming
# the input; so do the file system and a missing optional package.
USER_ERRORS = (ValueError, OSError, ImportError)
BUG_REPORT = ("This is a bug in tinybert_tf, not a mistake of yours; please "
              "report it with the traceback above.")


class RunStopped(Exception):
    """A run stopped for a reason its message states (a non-finite loss):
    exit status 1, no traceback."""


_state = {"quiet": False}  # set by `setup`; a library user's console is theirs


def add_verbose_flag(parser):
    """--verbose: the dependencies' logging and warnings back on."""
    parser.add_argument(
        "--verbose", action="store_true",
        help="show TensorFlow's C++ logging and the warnings of the "
             f"dependencies (also: {VERBOSE_ENV}=1)")
    return parser


def is_verbose(verbose=False):
    """True with `verbose` or with TINYBERT_TF_VERBOSE set to 1/true/yes."""
    return bool(verbose) or os.environ.get(VERBOSE_ENV, "").strip().lower() in (
        "1", "true", "yes", "on")


def setup(verbose=False):
    """Quiet (or, with `verbose`, the dependencies' own) console output of a
    command line, for this process and its subprocesses. Returns whether the
    output is verbose."""
    verbose = is_verbose(verbose)
    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if not isinstance(finder, _QuietTensorFlowImport)]
    _state["quiet"] = not verbose
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        if os.environ.pop(_SET_BY_US_ENV, None):
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        return True
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        os.environ[_SET_BY_US_ENV] = "1"
    _quiet_python()
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    return False


def _quiet_python():
    if not sys.warnoptions:  # python -W ... / PYTHONWARNINGS decide otherwise
        # Every module but ours (and a script run as __main__).
        warnings.filterwarnings("ignore", module=r"(?!(%s)(\.|$))" % "|".join(
            ("__main__",) + OWN_PACKAGES))
    for name in DEPENDENCY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders do (once), and loads it with
    file descriptor 2 captured."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _CapturedLoader(spec.loader)
        return spec


class _CapturedLoader(importlib.abc.Loader):
    """`loader`, with its module run under `_stderr_captured`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _stderr_captured():
            self.loader.exec_module(module)

    def __getattr__(self, name):  # resource readers and the like
        return getattr(self.loader, name)


@contextlib.contextmanager
def native_output_captured():
    """Around a call into a native library that logs on its own (file
    descriptor 2): its lines are dropped after a quiet `setup` (written out
    if the call fails), and left alone otherwise."""
    if not _state["quiet"]:
        yield
        return
    with _stderr_captured():
        yield


@contextlib.contextmanager
def _stderr_captured():
    """File descriptor 2 into a temporary file; replayed on an exception."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):  # no usable fd 2
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(saved)
            captured.seek(0)
            data = captured.read()
            while data:
                data = data[os.write(2, data):]
            raise
        else:
            _restore(saved)


def _restore(saved):
    with contextlib.suppress(OSError, AttributeError, ValueError):
        sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


def interactive(stream=None):
    """Whether `stream` (default: stdout) shows live progress bars: a
    terminal or a notebook; not a file, a pipe or CI."""
    stream = sys.stdout if stream is None else stream
    if "ipykernel" in sys.modules:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def fit_verbose():
    """Keras `fit(verbose=...)`: the live bar (1) on a terminal, one line per
    epoch (2) elsewhere (Keras's own bar writes carriage returns and colour
    codes into files too)."""
    return 1 if interactive() else 2


def run_main(parse_args, run, argv=None):
    """`run(parse_args(argv))` with the console set up (quiet unless
    `args.verbose` or TINYBERT_TF_VERBOSE); returns the exit status."""
    args = parse_args(argv)
    setup(getattr(args, "verbose", False))
    try:
        return run(args)
    except BrokenPipeError:
        # The reader of our output (`| head`) has what it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except RunStopped as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except USER_ERRORS as error:
        if is_verbose(getattr(args, "verbose", False)):
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - shown in full, as a bug
        traceback.print_exc()
        print(BUG_REPORT, file=sys.stderr)
        return 1
