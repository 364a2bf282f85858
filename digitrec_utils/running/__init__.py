"""Running the suite: planning, executing notebooks (locally or on Dask), run folders, sweeps."""
