"""The musicnn 0.1.0 wheel's four pretrained taggers (Pons and Serra 2019) in Keras 3, with the wheel's weights.

Each tags 3 s log-mel patches with 50 tags: MSD_musicnn and MTT_musicnn (musically motivated front end),
MSD_vgg and MTT_vgg (5 layers of 3 x 3 convolutions, Choi et al. 2016), trained on the Million Song Dataset
or MagnaTagATune. Their inner layers make good general-purpose music embeddings; `extract` uses them
as the feature kind `musicnn`.
"""

import functools
from pathlib import Path

import librosa
import numpy as np

from stages.core.params import MUSICNN_LAYERS, Features, Musicnn, layer_names
from stages.core.paths import musicnn_checkpoint
from stages.features.audio import ClipTooShort
from stages.model.keras_import import keras_and_tensorflow

SAMPLE_RATE, N_FFT, HOP_LENGTH, N_MELS, PATCH_FRAMES = 16000, 512, 256, 96, 187
MSD_TAGS = ["rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
            "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
            "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
            "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist",
            "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk",
            "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy"]
MTT_TAGS = ["guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
            "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals",
            "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft",
            "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
            "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral"]
TAGS = {model: MSD_TAGS if model.startswith("MSD") else MTT_TAGS for model in MUSICNN_LAYERS}
"""model -> the 50 tags of its training set, in the order of its taggram."""
WIDTHS = {"taggram": 50, "penultimate": 200, "max_pool": 753, "mean_pool": 753,
          "pool1": 128, "pool2": 128, "pool3": 128, "pool4": 128, "pool5": 128}
"""Values per patch of each layer. A VGG block's (time, frequency, 128) output is averaged over time and
frequency, as Choi et al. (2017) pool each layer for transfer."""
POOLINGS = {"mean": np.mean, "max": np.max}
"""How a window's 3 s patches are pooled; `mean+max` concatenates both, mean first."""


def chosen(model=Musicnn.model, layer=Musicnn.layer, pooling=Musicnn.pooling):
    """[(layer, pooling)] in the order an embedding concatenates them: `layer` one of the model's MUSICNN_LAYERS,
    a list of them or "all" (every one, in MUSICNN_LAYERS' order); `pooling` "mean", "max" or "mean+max"."""
    return [(name, how) for name in layer_names(model, layer) for how in pooling.split("+")]


def embedding_width(model=Musicnn.model, layer=Musicnn.layer, pooling=Musicnn.pooling):
    """Values per window of the embedding that `model`, `layer` and `pooling` choose."""
    return sum(WIDTHS[name] for name, _ in chosen(model, layer, pooling))


def log_mel_patches(y, sr=Features.sample_rate, res_type=Musicnn.res_type):
    """musicnn's input: audio (n_samples,) -> (n_patches, 187, 96) float32 log-mel patches of 3 s.

    As the package computes it: 16 kHz, n_fft 512, hop 256, 96 mel bands, float16, log10(10000 x + 1);
    whole patches only. `res_type` is librosa's resampler: the package's own, through librosa 0.7, is
    "kaiser_best" (resampy); the default "soxr_hq" is 40 times faster and moves the outputs a little
    (docs/features.md). Raises ClipTooShort for audio shorter than one patch.
    """
    audio = librosa.resample(y, orig_sr=sr, target_sr=SAMPLE_RATE, res_type=res_type) if sr != SAMPLE_RATE else y
    # pad_mode="reflect": the stft default of librosa 0.7, which the package was trained with.
    mel = librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, n_fft=N_FFT,
                                         n_mels=N_MELS, pad_mode="reflect").T
    # The package rounds to float16 first; the logarithm is taken in float32, where 10000 x cannot overflow.
    mel = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    n_patches = len(mel) // PATCH_FRAMES
    if n_patches == 0:
        raise ClipTooShort(f"{len(y) / sr:.1f} s of audio is shorter than one 3 s musicnn patch")
    return mel[:n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, N_MELS)


def build_musicnn(n_tags=50):
    """The MSD_musicnn and MTT_musicnn graph, its layers named as the checkpoints' variables.

    Input (batch, 187, 96) log-mel; outputs a dict: the `n_tags` tag probabilities and the embeddings of
    the last layers (batch normalisation in inference mode).
    """
    keras, _ = keras_and_tensorflow()
    layers, ops = keras.layers, keras.ops

    def max_over_frequency(conv, batch_norm, source):
        return layers.Lambda(lambda t: ops.max(t, axis=2))(batch_norm(conv(source)))

    patches = keras.Input((PATCH_FRAMES, N_MELS))
    spectrogram = layers.BatchNormalization(name="batch_normalization")(layers.Reshape((PATCH_FRAMES, N_MELS, 1))(patches))
    # Front end: timbral filters span 40 % and 70 % of the mel bands; temporal ones 1, 2 and 4 ticks of 1 s.
    time_padded = layers.ZeroPadding2D(((3, 3), (0, 0)))(spectrogram)
    front_end = [
        max_over_frequency(layers.Conv2D(204, (7, 38), activation="relu", name="conv2d"),
                           layers.BatchNormalization(name="batch_normalization_1"), time_padded),
        max_over_frequency(layers.Conv2D(204, (7, 67), activation="relu", name="conv2d_1"),
                           layers.BatchNormalization(name="batch_normalization_2"), time_padded),
    ] + [
        max_over_frequency(layers.Conv2D(51, (length, 1), padding="same", activation="relu", name=f"conv2d_{i}"),
                           layers.BatchNormalization(name=f"batch_normalization_{i + 1}"), spectrogram)
        for i, length in [(2, 128), (3, 64), (4, 32)]
    ]
    front = layers.Concatenate(axis=-1)(front_end)                       # (batch, 187, 561)
    # Mid end: the checkpoint's 7 x width 2-D convolutions are 1-D convolutions over time.
    mid = [layers.BatchNormalization(name="batch_normalization_6")(
        layers.Conv1D(64, 7, padding="same", activation="relu", name="conv2d_5")(front))]
    for i in (6, 7):
        conv = layers.Conv1D(64, 7, padding="same", activation="relu", name=f"conv2d_{i}")(mid[-1])
        mid.append(layers.Add()([layers.BatchNormalization(name=f"batch_normalization_{i + 1}")(conv), mid[-1]]))
    features = layers.Concatenate(axis=-1)([front] + mid)                # (batch, 187, 753)
    # Back end: max and mean over time, interleaved per feature as the original flattens them.
    max_pool = layers.GlobalMaxPooling1D()(features)
    mean_pool = layers.GlobalAveragePooling1D()(features)
    pooled = layers.Flatten()(layers.Lambda(lambda pair: ops.stack(pair, axis=-1))([max_pool, mean_pool]))
    hidden = layers.Dense(200, activation="relu", name="dense")(layers.BatchNormalization(name="batch_normalization_9")(pooled))
    penultimate = layers.BatchNormalization(name="batch_normalization_10")(hidden)
    taggram = layers.Dense(n_tags, activation="sigmoid", name="dense_1")(penultimate)
    return keras.Model(patches, {"taggram": taggram, "penultimate": penultimate,
                                 "max_pool": max_pool, "mean_pool": mean_pool})


def build_vgg(n_tags=50, filters=128):
    """The MSD_vgg and MTT_vgg graph, its layers named as the checkpoints' variables.

    Input (batch, 187, 96) log-mel; outputs a dict: the `n_tags` tag probabilities and each block's
    max-pooled output averaged over time and frequency, (batch, filters). The blocks' maps themselves are
    the layers named pool1 ... pool5, e.g. pool5 (batch, 2, 1, filters), which the dense layer reads flattened.
    """
    keras, _ = keras_and_tensorflow()
    layers = keras.layers
    patches = keras.Input((PATCH_FRAMES, N_MELS))
    block = layers.BatchNormalization(name="batch_normalization")(layers.Reshape((PATCH_FRAMES, N_MELS, 1))(patches))
    outputs = {}
    for i, (pool, stride) in enumerate([((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)),
                                        ((4, 4), (4, 4))], start=1):
        conv = layers.Conv2D(filters, (3, 3), padding="same", activation="relu", name=f"{i}CNN")(block)
        block = layers.MaxPooling2D(pool, stride, name=f"pool{i}")(layers.BatchNormalization(name=f"batch_normalization_{i}")(conv))
        outputs[f"pool{i}"] = layers.GlobalAveragePooling2D()(block)
    taggram = layers.Dense(n_tags, activation="sigmoid", name="dense")(layers.Flatten()(block))
    return keras.Model(patches, {"taggram": taggram, **outputs})


def build_model(model=Musicnn.model):
    """The Keras graph of `model`, one of MUSICNN_LAYERS, without its weights."""
    build = build_vgg if model.endswith("_vgg") else build_musicnn
    return build(n_tags=len(TAGS[model]))


def load_weights(model, checkpoint):
    """Set every weight of `model` from the TF1 checkpoint by name; return the names of the variables used.

    Raises ValueError if a layer's weight is missing or has another shape.
    """
    _, tf = keras_and_tensorflow()
    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint) + "/")
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        values = []
        for weight in layer.weights:
            key = f"{layer.name}/{weight.name}"
            if not reader.has_tensor(key):
                raise ValueError(f"checkpoint has no variable {key}")
            value = reader.get_tensor(key)
            if value.shape != tuple(weight.shape):
                value = value.reshape(weight.shape)  # 2-D mid-end kernels [7, width, 1, 64] as 1-D [7, width, 64]
            values.append(value)
            used.add(key)
        layer.set_weights(values)
    return used


@functools.lru_cache
def pretrained_model(model=Musicnn.model, checkpoint=None):
    """`model` with its weights from `checkpoint` (default: data/pretrained/<model>), built once per process.

    In a fresh process (an extract worker, one of several) TensorFlow is kept to one thread per op;
    where it already runs (predict has loaded its classifier) it keeps its threads.
    """
    _, tf = keras_and_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:
        pass
    network = build_model(model)
    load_weights(network, checkpoint or musicnn_checkpoint(model))
    return network


def patch_outputs(y, sr=Features.sample_rate, network=None, res_type=Musicnn.res_type):
    """Every output of a model for each 3 s patch of audio y (n_samples,): {layer: (n_patches, width)}.

    `network` defaults to the pretrained MSD_musicnn of data/pretrained.
    """
    outputs = (network or pretrained_model()).predict_on_batch(log_mel_patches(y, sr, res_type))
    return {layer: np.asarray(values) for layer, values in outputs.items()}


def pooled(outputs, model=Musicnn.model, layer=Musicnn.layer, pooling=Musicnn.pooling):
    """One clip's embedding from its patch_outputs {layer: (n_patches, width)}: (embedding_width(model, layer,
    pooling),) float32, each chosen layer's outputs pooled over the patches and concatenated (chosen)."""
    return np.concatenate([POOLINGS[how](outputs[name], axis=0).astype(np.float32)
                           for name, how in chosen(model, layer, pooling)])


def musicnn_embedding(y, sr=Features.sample_rate, model=Musicnn.model, layer=Musicnn.layer, pooling=Musicnn.pooling,
                      res_type=Musicnn.res_type, checkpoint=None):
    """One embedding per clip: (..., n_samples) audio -> (..., embedding_width(model, layer, pooling)) float32,
    each chosen layer's outputs pooled over the clip's 3 s patches and concatenated (pooled).

    `checkpoint` defaults to data/pretrained/<model>.
    """
    if y.ndim > 1:
        return np.stack([musicnn_embedding(clip, sr, model, layer, pooling, res_type, checkpoint) for clip in y])
    network = pretrained_model(model, checkpoint and Path(checkpoint))
    return pooled(patch_outputs(y, sr, network, res_type), model, layer, pooling)
