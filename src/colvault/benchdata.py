"""The benchmark data set, exactly as the issues define it, so figures compare across tools.

n rows of (t: sorted datetime64[ns], sensor: int32 in [0, 1000), value: float64 with 3 decimals,
temp: float32 noise around 20), drawn from ``numpy.random.default_rng(0)`` in that order.
"""

from __future__ import annotations

import numpy as np

N_ROWS = 20_000_000
T0 = 1_700_000_000_000_000_000


def benchmark_data(n: int = N_ROWS) -> dict[str, np.ndarray]:
    """Generate the columns in the order the definition draws them.

    >>> d = benchmark_data(5)
    >>> [(k, str(v.dtype)) for k, v in d.items()]
    [('t', 'datetime64[ns]'), ('sensor', 'int32'), ('value', 'float64'), ('temp', 'float32')]
    """
    rng = np.random.default_rng(0)
    t = (np.arange(n, dtype=np.int64) * 1000 + T0).view("datetime64[ns]")
    sensor = rng.integers(0, 1000, n, dtype=np.int32)
    value = np.round(np.sin(np.arange(n) / 5000.0) * 50 + rng.normal(0, 1, n), 3)
    temp = (20 + rng.normal(0, 0.5, n)).astype(np.float32)
    return {"t": t, "sensor": sensor, "value": value, "temp": temp}


SCHEMA = {"t": "M8[ns]", "sensor": "i4", "value": "f8", "temp": "f4"}
