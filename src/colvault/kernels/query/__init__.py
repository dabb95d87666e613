"""Query kernels: fused predicates generated per expression shape, the batch loops that decode
compressed chunks and run them, and the streaming aggregates (stats, histogram, group-by)."""
