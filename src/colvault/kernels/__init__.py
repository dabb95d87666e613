"""Pure Numba kernels: arrays in, arrays out. No files, no sqlite, no blosc2."""
