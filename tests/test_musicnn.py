"""The pretrained stage and the Keras MSD_musicnn: weights, tags that make musical sense, errors."""

import re
import sys
import zipfile

import numpy as np
import pytest
from conftest import PROJECT, run_in

from stages.core.errors import UserError
from stages.features.audio import ClipTooShort
from stages.features.musicnn import LAYERS, TAGS, build_model, load_weights, log_mel_patches, patch_outputs
from stages.pretrained import WHEEL, download_wheel, unpack_checkpoint


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """The musicnn 0.1.0 wheel, as the stage gets it; skips where PyPI cannot be reached."""
    try:
        return download_wheel(tmp_path_factory.mktemp("wheel"))
    except UserError as error:
        pytest.skip(f"cannot get the musicnn wheel here: {error}")


@pytest.fixture(scope="session")
def checkpoint(wheel, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrained")
    unpack_checkpoint(wheel, folder)
    return folder / "MSD_musicnn"


@pytest.fixture(scope="session")
def model(checkpoint):
    model = build_model()
    model.used = load_weights(model, checkpoint)
    return model


def test_every_checkpoint_variable_is_loaded_with_its_shape(model, checkpoint):
    import tensorflow as tf
    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint) + "/")
    trained = {name for name in reader.get_variable_to_shape_map() if "Adam" not in name and "_power" not in name}
    assert model.used == trained and len(trained) == 64
    kernel = next(w for w in model.get_layer("conv2d").weights if w.name == "kernel")
    np.testing.assert_array_equal(kernel.numpy(), reader.get_tensor("conv2d/kernel"))
    assert tuple(kernel.shape) == (7, 38, 1, 204)


def test_the_outputs_have_the_documented_widths(model):
    outputs = model.predict_on_batch(np.zeros((2, 187, 96), np.float32))
    assert {name: np.asarray(value).shape for name, value in outputs.items()} == {
        name: (2, width) for name, width in LAYERS.items()}


def test_a_clip_of_30_s_gives_ten_patches_of_3_s():
    patches = log_mel_patches(np.zeros(22050 * 30, np.float32), 22050)
    assert patches.shape == (10, 187, 96) and patches.dtype == np.float32


def test_audio_shorter_than_a_patch_is_refused():
    with pytest.raises(ClipTooShort):
        log_mel_patches(np.zeros(22050 * 2, np.float32), 22050)


def top_tags(model, path, k=5):
    import librosa
    y, sr = librosa.load(path)
    tags = patch_outputs(y, sr, model)["taggram"].mean(axis=0)
    return [TAGS[i] for i in np.argsort(-tags)[:k]]


@pytest.mark.parametrize("genre, expected", [
    ("classical", {"classical", "instrumental"}),
    ("metal", {"metal", "heavy metal", "hard rock"}),
    ("hiphop", {"Hip-Hop"}),
])
def test_real_clips_get_tags_that_make_musical_sense(genre, expected, model, sample_dir):
    clips = sorted((sample_dir / genre).glob("*.wav"))
    tagged = [top_tags(model, clip) for clip in clips]
    hits = sum(bool(expected & set(tags)) for tags in tagged)
    assert hits >= 3, f"{genre}: {tagged}"


def test_a_wheel_with_the_wrong_sha256_is_refused(tmp_path):
    fake = tmp_path / WHEEL
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("musicnn/MSD_musicnn/checkpoint", "x")
    with pytest.raises(UserError, match="is not the musicnn 0.1.0 wheel: sha256"):
        unpack_checkpoint(fake, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_stage_names_a_missing_wheel_file(tmp_path):
    (tmp_path / "stages").symlink_to(PROJECT / "stages")
    params = (PROJECT / "params.yaml").read_text().replace("kind: mfcc", "kind: musicnn")
    (tmp_path / "params.yaml").write_text(re.sub(r"wheel: +#", "wheel: /nowhere/musicnn.whl  #", params))
    result = run_in(tmp_path, sys.executable, "-m", "stages.pretrained", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: pretrained.wheel names /nowhere/musicnn.whl, which is not a file: "
                                     "fix the path or leave it empty")
    assert not (tmp_path / "data/pretrained").exists()


def test_every_layer_pooled_both_ways_is_the_concatenation_in_the_documented_order(checkpoint, sample_dir):
    from stages.features.audio import load_audio
    from stages.features.files import feature_width
    from stages.features.musicnn import musicnn_embedding
    y = load_audio(sample_dir / "jazz/jazz.00000.wav", 22050)
    every = musicnn_embedding(y, layer="all", pooling="mean+max", checkpoint=checkpoint)
    parts = [musicnn_embedding(y, layer=layer, pooling=pooling, checkpoint=checkpoint)
             for layer in LAYERS for pooling in ("mean", "max")]
    np.testing.assert_array_equal(every, np.concatenate(parts))
    width = feature_width({"kind": "musicnn", "musicnn": {"layer": "all", "pooling": "mean+max"}})
    assert every.shape == (width,) == (2 * sum(LAYERS.values()),)
    chosen = musicnn_embedding(y, layer=["taggram", "penultimate"], checkpoint=checkpoint)
    np.testing.assert_array_equal(chosen, np.concatenate(parts[0:4:2]))
