"""Keras and TensorFlow, imported without their start-up chatter.

Importing TensorFlow prints, through absl's C++ logging and whatever TF_CPP_MIN_LOG_LEVEL says,
lines such as "All log messages before absl::InitializeLog() is called are written to STDERR",
"oneDNN custom operations are on" and, with the full wheel on a machine without a GPU, its
CUDA probing. They are caught at the file-descriptor level during the import and dropped;
any other line is passed on, so a real problem still shows.

Two settings make a stage as fast as a bare training script, with the same numbers:
- Keras imports scikit-learn (for its estimator wrappers) and matplotlib (for its image
  galleries) whenever they are installed, and librosa installs them: a second of start-up
  that no stage uses. They are hidden during the import, which Keras takes as their absence;
  a stage can still import them afterwards.
- TensorFlow's pool for running independent ops side by side has nothing to overlap in a
  stack of Dense layers, and on a few cores it takes them from the pool that does each
  matrix product: one op at a time.
"""

import functools
import re
import sys
import tempfile
from contextlib import contextmanager

from stages.common import redirect_fd

CHATTER = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|cpu_feature_guard|"
    r"optimized to use available CPU instructions|rebuild TensorFlow with the appropriate compiler flags|"
    r"cuda|CUDA|cuDNN|cuFFT|cuBLAS|TensorRT|TF-TRT|GPU will not be used|computation_placer|"
    r"Unable to register .* factory|^I0000 00:00:")


UNUSED_EXTRAS = ("sklearn", "matplotlib")


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


@functools.cache
def keras_and_tensorflow():
    """(keras, tensorflow), imported once per process, quietly, running one op at a time if TF is not running yet."""
    with tempfile.TemporaryFile() as captured:
        try:
            with redirect_fd(2, captured), hidden(UNUSED_EXTRAS):
                import keras
                import tensorflow
        finally:
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not CHATTER.search(line):
                    print(line, file=sys.stderr)
    try:
        tensorflow.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already runs (used before, in a notebook say): its pools stay as they are
    return keras, tensorflow
