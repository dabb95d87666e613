"""Adapters between colvault and the outside world (CSV, HDF5, pandas, Dask)."""
