"""The pipeline's stages, one module each; `python -m stages.<name>` runs one."""

import os

# Set before any stage imports TensorFlow: its C++ INFO and WARNING lines would bury the stages' own
# messages. Its ERROR lines still show (3 would hide them); the few start-up lines printed before
# this setting takes effect are dropped by stages/model/keras_import.py.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
