"""The pipeline's stages, one module each; `python -m stages.<name>` runs one."""

import os

# Set before any stage imports TensorFlow: its C++ start-up chatter would bury the stages' own messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
