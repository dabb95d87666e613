"""HDF5 files in and out: ``import_hdf5`` copies a PyTables, h5py or pandas ``HDFStore`` file
into a store; ``export_hdf5`` writes a store or subtree as a file PyTables reads as its own.
h5py is imported when a file is opened, not with this package."""

from .export import export_hdf5
from .importer import HDF5Warning, import_hdf5

__all__ = ["HDF5Warning", "export_hdf5", "import_hdf5"]
