"""Digits in photos and scans: predicting image files, reading digit strings, photo-like envelopes.

The names the notebooks and the CLI use are re-exported here; everything else is imported from its module.
"""

from digitrec_utils.imaging.predict import predict_images, render_example_photo

__all__ = [
    "predict_images",
    "render_example_photo",
]
