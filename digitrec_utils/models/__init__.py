"""Keras networks, their training, precision and saved-model files."""
