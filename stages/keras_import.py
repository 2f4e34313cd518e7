"""Keras and TensorFlow, imported without their start-up chatter.

Importing TensorFlow prints, through absl's C++ logging and whatever TF_CPP_MIN_LOG_LEVEL says,
lines such as "All log messages before absl::InitializeLog() is called are written to STDERR",
"oneDNN custom operations are on" and, with the full wheel on a machine without a GPU, its
CUDA probing. They are caught at the file-descriptor level during the import and dropped;
any other line is passed on, so a real problem still shows.
"""

import functools
import re
import sys
import tempfile

from stages.common import redirect_fd

CHATTER = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|cpu_feature_guard|"
    r"optimized to use available CPU instructions|rebuild TensorFlow with the appropriate compiler flags|"
    r"cuda|CUDA|cuDNN|cuFFT|cuBLAS|TensorRT|TF-TRT|GPU will not be used|computation_placer|"
    r"Unable to register .* factory|^I0000 00:00:")


@functools.cache
def keras_and_tensorflow():
    """(keras, tensorflow), imported once per process, quietly."""
    with tempfile.TemporaryFile() as captured:
        try:
            with redirect_fd(2, captured):
                import keras
                import tensorflow
        finally:
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not CHATTER.search(line):
                    print(line, file=sys.stderr)
    return keras, tensorflow
