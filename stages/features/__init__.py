"""Feature rows of audio or tables: audio decoding, the MFCC and musicnn kinds, tables, and the workers that run them."""
