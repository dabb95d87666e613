"""Encoding kernels: what a chunk is turned into before compression (packed integers, decimals,
dictionary codes) and the zone map computed as it is cut."""
