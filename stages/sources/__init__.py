"""Where the tracks come from: one module per data.source (run by stages/download.py), and what they share."""
