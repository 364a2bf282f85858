"""Digits in photos and scans: finding ink, preparing images, predicting, reading strings."""
