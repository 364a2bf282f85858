"""digitrec_utils: the logic behind the digitrec notebook report suite.

The notebooks in ``notebooks/`` are thin: each cell calls a named function of this package.
"""

__version__ = "0.1.0"
