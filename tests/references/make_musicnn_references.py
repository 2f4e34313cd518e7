"""Reference outputs of the original musicnn 0.1.0 package, for tests/test_musicnn.py's fidelity tests.

Run once, in a throwaway environment that can run the package's TensorFlow 1-style code (not the project's):

    python3.11 -m venv /tmp/musicnn-ref
    /tmp/musicnn-ref/bin/pip install tensorflow-cpu==2.15.1 librosa==0.9.2 resampy==0.4.3 numpy==1.26.4 numba==0.59.1
    /tmp/musicnn-ref/bin/pip install --no-deps musicnn==0.1.0
    /tmp/musicnn-ref/bin/python tests/references/make_musicnn_references.py ../shared/gtzan-sample

It writes tests/references/musicnn-<model>.npz: for each clip of CLIPS, the package's own spectrogram
(`musicnn.extractor.batch_data`, 3 s patches without overlap) run through the package's own graph
(`musicnn.models.define_model`) restored from the package's checkpoint: the taggram and INNER's layer of
the first PATCHES patches, float32. The package's `extractor()` itself cannot return a musicnn model's
features for more than one patch (its loop names an undefined variable), hence the graph is run here.

librosa is set to the defaults of librosa 0.7, which the package was written against and trained with:
stft pads by reflection (0.9 pads with zeros) and resampling is resampy's kaiser_best (0.9's default too).
"""

import functools
import sys
from pathlib import Path

import librosa
import numpy as np
import tensorflow as tf
from musicnn import configuration, extractor, models

CLIPS = ["blues/blues.00000.wav", "classical/classical.00001.wav", "hiphop/hiphop.00002.wav",
         "metal/metal.00003.wav", "reggae/reggae.00004.wav"]
PATCHES = 4
INNER = {"musicnn": "penultimate", "vgg": "pool5"}
librosa.feature.melspectrogram = functools.partial(librosa.feature.melspectrogram, pad_mode="reflect")


def references(model, sample_dir):
    labels = configuration.MTT_LABELS if model.startswith("MTT") else configuration.MSD_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, configuration.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, is_training, model, len(labels))
    inner = outputs[-1] if "musicnn" in model else outputs[5]  # penultimate; pool5
    session = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(session, str(Path(models.__file__).parent / model) + "/")
    result = {}
    for clip in CLIPS:
        batch, _ = extractor.batch_data(str(Path(sample_dir) / clip), 187, 187)
        taggram, layer = session.run([tf.nn.sigmoid(outputs[0]), inner],
                                     feed_dict={x: batch[:PATCHES], is_training: False})
        name = Path(clip).stem
        result[f"{name}/taggram"] = taggram.astype(np.float32)
        result[f"{name}/{INNER['vgg' if 'vgg' in model else 'musicnn']}"] = layer.reshape(len(layer), -1).astype(np.float32)
    session.close()
    return result


if __name__ == "__main__":
    tf.compat.v1.disable_eager_execution()
    for model in ["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"]:
        np.savez_compressed(Path(__file__).parent / f"musicnn-{model}.npz", **references(model, sys.argv[1]))
        print(model, "done")
