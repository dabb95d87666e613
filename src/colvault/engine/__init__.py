"""The storage engine: store, catalog, segments, codecs, tables, arrays, sidecars, commits."""
