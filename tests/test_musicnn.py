"""The pretrained stage and the Keras ports of the musicnn wheel's four taggers: weights, fidelity to the original
package, tags that make musical sense, errors."""

import functools
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import PARAMS_YAML, PROJECT, SAMPLE_DIR, clone_project, dvc, run_in

from stages.core.errors import UserError
from stages.core.params import MUSICNN_LAYERS, load_params
from stages.core.tracks import read_tracks
from stages.features.audio import ClipTooShort, load_audio
from stages.features.musicnn import MSD_TAGS, WIDTHS, build_model, load_weights, log_mel_patches, patch_outputs
from stages.pretrained import WHEEL, download_wheel, unpack_checkpoint

REFERENCES = Path(__file__).parent / "references"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """The musicnn 0.1.0 wheel, as the stage gets it; skips where PyPI cannot be reached."""
    try:
        return download_wheel(tmp_path_factory.mktemp("wheel"))
    except UserError as error:
        pytest.skip(f"cannot get the musicnn wheel here: {error}")


@pytest.fixture(scope="session")
def pretrained(wheel, tmp_path_factory):
    """A folder with the checkpoint of every model, as the stage unpacks them."""
    folder = tmp_path_factory.mktemp("pretrained")
    for model in MUSICNN_LAYERS:
        unpack_checkpoint(wheel, folder, model)
    return folder


@pytest.fixture(scope="session")
def checkpoint(pretrained):
    return pretrained / "MSD_musicnn"


@pytest.fixture(scope="session")
def networks(pretrained):
    """model -> its Keras port with the checkpoint's weights, and .used: the names of the variables it loaded."""
    ported = {}
    for model in MUSICNN_LAYERS:
        ported[model] = build_model(model)
        ported[model].used = load_weights(ported[model], pretrained / model)
    return ported


@pytest.fixture(scope="session")
def model(networks):
    return networks["MSD_musicnn"]


@pytest.mark.parametrize("model_name, n_variables", [("MSD_musicnn", 64), ("MTT_musicnn", 64), ("MSD_vgg", 36),
                                                     ("MTT_vgg", 36)])
def test_every_checkpoint_variable_is_loaded_with_its_shape(model_name, n_variables, networks, pretrained):
    import tensorflow as tf
    reader = tf.compat.v1.train.NewCheckpointReader(str(pretrained / model_name) + "/")
    trained = {name for name in reader.get_variable_to_shape_map() if "Adam" not in name and "_power" not in name}
    assert networks[model_name].used == trained and len(trained) == n_variables
    first = "conv2d" if "musicnn" in model_name else "1CNN"
    kernel = next(w for w in networks[model_name].get_layer(first).weights if w.name == "kernel")
    np.testing.assert_array_equal(kernel.numpy(), reader.get_tensor(f"{first}/kernel"))


@pytest.mark.parametrize("model_name", list(MUSICNN_LAYERS))
def test_the_outputs_have_the_documented_widths(model_name, networks):
    outputs = networks[model_name].predict_on_batch(np.zeros((2, 187, 96), np.float32))
    assert {name: np.asarray(value).shape for name, value in outputs.items()} == {
        name: (2, WIDTHS[name]) for name in MUSICNN_LAYERS[model_name]}


@functools.cache
def first_patches_as_the_package_makes_them(clip):
    """The first 4 log-mel patches of a real sample clip, resampled as the original package does (kaiser_best, about
    0.7 s a clip): computed once for the four models."""
    y = load_audio(SAMPLE_DIR / clip.split(".")[0] / f"{clip}.wav", 22050)
    return log_mel_patches(y, 22050, res_type="kaiser_best")[:4]


@pytest.mark.parametrize("model_name", list(MUSICNN_LAYERS))
def test_the_port_gives_the_original_packages_taggram_and_inner_layer(model_name, networks, sample_dir):
    """Against tests/references (made by make_musicnn_references.py with the original package) on 5 real clips,
    4 patches each, resampled as the package does. Tolerance 1e-4: the same float32 network, its sums in another
    order by another TensorFlow (measured: at most 4e-6)."""
    import keras
    references = np.load(REFERENCES / f"musicnn-{model_name}.npz")
    network = networks[model_name]
    inner = "penultimate" if "musicnn" in model_name else "pool5"
    probe = keras.Model(network.input, [network.output["taggram"], network.get_layer(inner).output
                                        if inner == "pool5" else network.output[inner]])
    clips = [key.split("/")[0] for key in references.files if key.endswith("/taggram")]
    assert len(clips) == 5
    for clip in clips:
        taggram, layer = probe.predict_on_batch(first_patches_as_the_package_makes_them(clip))
        np.testing.assert_allclose(taggram, references[f"{clip}/taggram"], rtol=0, atol=1e-4)
        np.testing.assert_allclose(layer.reshape(4, -1), references[f"{clip}/{inner}"], rtol=0, atol=1e-4)


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
    return [MSD_TAGS[i] for i in np.argsort(-tags)[:k]]


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
    params = PARAMS_YAML.replace("kind: mfcc", "kind: musicnn")
    (tmp_path / "params.yaml").write_text(re.sub(r"wheel: +#", "wheel: /nowhere/musicnn.whl  #", params))
    result = run_in(tmp_path, sys.executable, "-m", "stages.pretrained", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: pretrained.wheel names /nowhere/musicnn.whl, which is not a file: "
                                     "fix the path or leave it empty")
    assert not (tmp_path / "data/pretrained").exists()


@pytest.mark.parametrize("model_name", ["MSD_musicnn", "MTT_vgg"])
def test_every_layer_pooled_both_ways_is_the_concatenation_in_the_documented_order(model_name, pretrained, sample_dir):
    from stages.features.files import feature_width
    from stages.features.musicnn import musicnn_embedding
    y = load_audio(sample_dir / "jazz/jazz.00000.wav", 22050)
    settings = {"model": model_name, "checkpoint": pretrained / model_name}
    every = musicnn_embedding(y, layer="all", pooling="mean+max", **settings)
    layers = MUSICNN_LAYERS[model_name]
    parts = [musicnn_embedding(y, layer=layer, pooling=pooling, **settings)
             for layer in layers for pooling in ("mean", "max")]
    np.testing.assert_array_equal(every, np.concatenate(parts))
    width = feature_width({"kind": "musicnn", "musicnn": {"model": model_name, "layer": "all", "pooling": "mean+max"}})
    assert every.shape == (width,) == (2 * sum(WIDTHS[name] for name in layers),)
    chosen = musicnn_embedding(y, layer=list(layers[:2]), **settings)
    np.testing.assert_array_equal(chosen, np.concatenate(parts[0:4:2]))


def test_a_layer_the_model_does_not_have_is_refused_in_one_line(tmp_path):
    params = PARAMS_YAML.replace("model: MSD_musicnn", "model: MSD_vgg")
    (tmp_path / "params.yaml").write_text(params)
    with pytest.raises(UserError) as refused:
        load_params(tmp_path / "params.yaml")
    assert str(refused.value) == ("params.yaml: 'features.musicnn.layer' penultimate is not a layer of MSD_vgg: "
                                  "set it to all, one of taggram, pool1, pool2, pool3, pool4, pool5, or a list of them")


# ---------------------------------------------------------------- through the whole pipeline

def test_a_vgg_model_with_every_layer_pooled_both_ways_runs_through_the_whole_pipeline(small_collection, tmp_path):
    # one model other than the default through every stage: the model and layer params reach pretrained, extract,
    # train's recipe and predict (the four models' networks are checked against the original package above), on a
    # folder of eight real clips
    repo = clone_project(tmp_path / "repo", {
        "data.source": "folder", "data.folder": str(small_collection), "features.kind": "musicnn",
        "features.musicnn.model": "MTT_vgg", "features.musicnn.layer": "all", "features.musicnn.pooling": "mean+max",
        "split.method": "stratified", "train.head": "logistic", "train.standardize": True})
    result = dvc(repo, "repro", "evaluate", check=False)
    if result.returncode != 0 and "pip could not download musicnn" in result.stderr:
        pytest.skip("PyPI cannot be reached here, and no wheel is given")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (repo / "data/pretrained").iterdir()) == ["LICENSE.md", "MTT_vgg"]
    rows = np.load(repo / "data/features/features.npy")
    assert rows.shape == (8, 2 * (50 + 5 * 128))
    test_tracks = (repo / "data/split/test.txt").read_text().splitlines()
    assert json.loads((repo / "metrics/eval.json").read_text())["test_tracks"] == len(test_tracks) > 0
    predicted = run_in(repo, sys.executable, "-m", "stages.predict", "--json", str(small_collection / "loud"))
    assert [json.loads(line)["windows"] for line in predicted.stdout.splitlines()] == [1] * 4
    # the layer pool5 alone, averaged, is its part after the taggram's mean and max and pool1-4's
    from stages.features.musicnn import musicnn_embedding
    first = read_tracks(repo / "data/features/tracks.csv")["track_id"].iat[0]
    pool5 = musicnn_embedding(load_audio(small_collection / first, 22050), model="MTT_vgg", layer="pool5",
                              checkpoint=repo / "data/pretrained/MTT_vgg")
    np.testing.assert_array_equal(rows[0, 2 * (50 + 4 * 128):2 * (50 + 4 * 128) + 128], pool5)
