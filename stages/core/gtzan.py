"""GTZAN's facts that more than one stage needs: its genres and the shape of its clip ids."""

import re

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
"""GTZAN's ten genres, in the order of its folders (and of np.unique, the seed's one-hot columns)."""

CLIP_ID = re.compile(rf"^({'|'.join(GENRES)})\.\d{{5}}$")
"""A GTZAN clip id, `blues.00000`: the clip's file name without its extension."""
