"""Head-to-head figures against PyTables, h5py and DuckDB at full scale, which asv cannot give.

    python -m asv_benchmarks.compare append [--rows N] [--repeat K]
    python -m asv_benchmarks.compare logger [--commits N] [--rows-per-commit R] [--repeat K]
    python -m asv_benchmarks.compare query [--rows N] [--repeat K]
    python -m asv_benchmarks.compare csv [--rows N] [--repeat K]
    python -m asv_benchmarks.compare first-use [--repeat K]
    python -m asv_benchmarks.compare hdf5 [--rows N] [--repeat K] [--complib none|zlib]
    python -m asv_benchmarks.compare nodes [--tables N] [--rows R]
    python -m asv_benchmarks.compare wide [--rows N] [--columns C] [--repeat K]
    python -m asv_benchmarks.compare cold [--rows N] [--repeat K]

``harness`` times (interleaved rounds, fresh directories, child processes), ``report`` prints,
one module per job runs it; ``__main__`` holds the registry of jobs and the command line.
"""
