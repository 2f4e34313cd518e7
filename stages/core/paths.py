"""Where every stage reads and writes, relative to the repository's top folder: each path defined once."""

from pathlib import Path

PARAMS = Path("params.yaml")
PARAMS_CHECKED = Path("data/params-checked.txt")  # check_params: the run goes on only once params.yaml is valid

RAW = Path("data/raw")                      # download: the audio (GTZAN, demo) and tracks.csv
RAW_TRACKS = RAW / "tracks.csv"
DOWNLOADS = Path("data/downloads")          # outside every DVC output: a partial or verified archive survives a re-run
GTZAN_CHECKSUMS = Path("data/gtzan/checksums.tsv")
GTZAN_ARTISTS = Path("data/gtzan/GTZANindex.txt")     # Sturm (2012): the artist of every clip
FAULT_FILTERED = Path("data/gtzan/splits/fault-filtered")

PRETRAINED = Path("data/pretrained")


def musicnn_checkpoint(model):
    """pretrained: the checkpoint of features.musicnn.model, e.g. data/pretrained/MSD_musicnn."""
    return PRETRAINED / model


FEATURES = Path("data/features")            # extract
FEATURE_MATRIX = FEATURES / "features.npy"
FEATURE_TRACKS = FEATURES / "tracks.csv"
FEATURE_PARAMS = FEATURES / "params.json"
SKIPPED = FEATURES / "skipped.csv"

LABELS = Path("data/labels")                # encode
ONEHOT = LABELS / "onehot.npy"
CLASSES = LABELS / "classes.json"

SPLIT = Path("data/split")                  # split: train.txt, valid.txt, test.txt

MODEL = Path("data/model/model.keras")      # train
TRAIN_LOG = Path("metrics/train_log.csv")
TRAIN_METRICS = Path("metrics/train.json")

EVAL_METRICS = Path("metrics/eval.json")    # evaluate
CONFUSION = Path("metrics/confusion.csv")
CONFUSION_COUNTS = Path("metrics/confusion_counts.csv")
CONFUSION_PLOT = Path("metrics/confusion.png")
MISCLASSIFIED = Path("metrics/misclassified.csv")

PICTURES = Path("metrics/mfcc")             # visualize

# What the stages make: one of them missing means an earlier stage has not run here.
STAGE_OUTPUTS = (RAW, PRETRAINED, FEATURES, LABELS, SPLIT, MODEL)
