"""Keras and TensorFlow, imported without their start-up chatter.

Importing TensorFlow prints a few lines before TF_CPP_MIN_LOG_LEVEL (set in stages/__init__.py)
takes effect: "All log messages before absl::InitializeLog() is called are written to STDERR",
"oneDNN custom operations are on", its CPU instruction notice and, with the full wheel on a
machine without a GPU, its CUDA probing. During the import the process's stderr goes through a
small filter process that drops exactly those lines and passes every other on as it comes: an
ERROR line shows, and if TensorFlow aborts the import, its last words still reach the console
(the filter outlives it).

Three settings make a stage as fast as a bare training script, with the same numbers:
- The import makes 300,000 objects and no garbage; Python's cyclic collector would walk them all
  five times over, a fifth of the import (0.4 s of every training run). It is paused meanwhile,
  and the objects are frozen out of its reach afterwards.
- Keras imports scikit-learn (for its estimator wrappers) and matplotlib (for its image
  galleries) whenever they are installed, and librosa installs them: a second of start-up
  that no stage uses. They are hidden during the import, which Keras takes as their absence;
  a stage can still import them afterwards.
- TensorFlow's pool for running independent ops side by side has nothing to overlap in a
  stack of Dense layers, and on a few cores it takes them from the pool that does each
  matrix product: one op at a time.
"""

import functools
import gc
import subprocess
import sys
import threading
from contextlib import contextmanager

from stages.core.console import redirect_fd

CHATTER = (
    r"All log messages before absl::InitializeLog\(\) is called|oneDNN custom operations are on|"
    r"cpu_feature_guard|rebuild TensorFlow with the appropriate compiler flags|"
    r"Could not find cuda drivers|cuda_executor|failed call to cuInit|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"TF-TRT Warning|GPU will not be used|computation_placer")
"""TensorFlow's known start-up lines, and only those."""
FIT_NOISE = (CHATTER + r"|NodeDef mentions attribute use_unbounded_threadpool which is not in the op definition")
"""What TensorFlow prints during a fit and is not news: its start-up lines, which some machines print only at the
first epoch (absl's "All log messages before absl::InitializeLog() is called"), and an ERROR line this Keras's
tf.data pipeline makes this TensorFlow print at every fit (a newer graph attribute that the older op ignores, as the
line itself says). Every other line, a real error among them, is shown."""

FILTER = ("import re, sys\n"
          "chatter = re.compile(sys.argv[1])\n"
          "for line in sys.stdin.buffer:\n"
          "    if not chatter.search(line.decode(errors='replace')):\n"
          "        sys.stderr.buffer.write(line)\n"
          "        sys.stderr.buffer.flush()\n")

UNUSED_EXTRAS = ("sklearn", "matplotlib")
_importing = threading.Lock()


@contextmanager
def hidden(modules):
    """Make `import` of each of `modules` not yet imported raise ImportError, for a while."""
    hiding = [name for name in modules if name not in sys.modules]
    sys.modules.update(dict.fromkeys(hiding))
    try:
        yield
    finally:
        for name in hiding:
            del sys.modules[name]


@contextmanager
def out_of_the_collectors_way():
    """Python's cyclic garbage collector paused for a while, then every object alive frozen (gc.freeze: what was made
    meanwhile, and what the process held before, is never walked again; freed by reference counting only), and the
    collector as it was. For a stage's imports, made once and kept for the life of the process."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


@contextmanager
def without_lines(pattern):
    """Pass what the process writes to stderr (fd 2) through a filter process that drops lines matching `pattern`.

    Only in the main thread (see common.redirect_fd); elsewhere stderr is left as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sys.stderr.flush()
    line_filter = subprocess.Popen([sys.executable, "-I", "-c", FILTER, pattern], stdin=subprocess.PIPE)
    try:
        with redirect_fd(2, line_filter.stdin):
            yield
    finally:
        line_filter.stdin.close()
        line_filter.wait()


@functools.cache
def keras_and_tensorflow():
    """(keras, tensorflow), imported once per process, quietly, running one op at a time if TF is not running yet."""
    with _importing, out_of_the_collectors_way(), without_lines(CHATTER), hidden(UNUSED_EXTRAS):
        import keras
        import tensorflow
    try:
        tensorflow.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already runs (used before, in a notebook say): its pools stay as they are
    return keras, tensorflow
