"""Queries over tables: condition strings parsed into typed expressions, pruned with zone maps,
evaluated chunk by chunk by fused Numba kernels (ARCHITECTURE.md "Queries")."""
