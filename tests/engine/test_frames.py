"""DataFrames in and out: time zones and indexes survive; bad frames change nothing."""

import json

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

import colvault
from colvault.engine.schema import ColumnSpec, TableSchema

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


@pytest.fixture
def store(tmp_path):
    with colvault.open(tmp_path / "s.colvault", "w") as s:
        yield s


def _round_trip(store, path, df):
    t = store.create_table(path, df)
    store.commit()
    out = t.to_pandas()
    pd.testing.assert_frame_equal(out, df, check_freq=False)
    return t


@settings(max_examples=25, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    index_zone=st.sampled_from(ZONES),
    seconds=st.lists(st.integers(-(2**33), 2**33), min_size=0, max_size=40),
    named=st.booleans(),
)
def test_zones_and_a_datetime_index_round_trip(tmp_path_factory, zone, index_zone, seconds, named):
    n = len(seconds)
    stamps = pd.to_datetime(np.array(seconds, "i8"), unit="s")
    df = pd.DataFrame(
        {"v": np.arange(n, dtype="f8"), "when": stamps.tz_localize("UTC").tz_convert(zone)},
        index=pd.DatetimeIndex(stamps[::-1], name="time" if named else None)
        .tz_localize("UTC")
        .tz_convert(index_zone),
    )
    with colvault.open(tmp_path_factory.mktemp("z") / "s.colvault", "w") as store:
        t = _round_trip(store, "/t", df)
        assert t.dtypes["when"] == f"datetime64[{np.datetime_data(stamps.dtype)[0]}, {zone}]"
        # stored as UTC: what read() gives
        np.testing.assert_array_equal(
            t.cols.when[:], df["when"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        )


@pytest.mark.parametrize(
    "index",
    [
        pd.Index([5, 3, 9], name="k"),
        pd.Index([5, 3, 9]),  # a filtered frame's index: stored as "index", restored unnamed
        pd.Index(["x", "y", "z"], name="label"),
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["site", None]),
    ],
)
def test_an_index_is_stored_as_columns_and_restored(store, index):
    df = pd.DataFrame({"v": [1.0, 2.0, 3.0], "index": [7, 8, 9]}, index=index)
    t = _round_trip(store, "/t", df)
    assert [column for column, _ in t.frame_index] == t.columns[: index.nlevels]
    assert list(t.read()["v"]) == [1.0, 2.0, 3.0]


def test_the_default_range_index_is_not_stored(store):
    t = _round_trip(store, "/t", pd.DataFrame({"v": [1.0, 2.0]}))
    assert t.columns == ["v"] and t.frame_index == []


def test_appending_frames_fills_the_index_columns(store):
    df = pd.DataFrame({"v": [1.0]}, index=pd.Index([3], name="k"))
    t = store.create_table("/t", df)
    t.append(pd.DataFrame({"v": [2.0]}, index=pd.Index([4], name="k")))
    t.append(pd.DataFrame({"k": [5], "v": [3.0]}))  # or from a column of that name
    store.commit()
    want = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=pd.Index([3, 4, 5], name="k"))
    pd.testing.assert_frame_equal(t.to_pandas(), want)


def test_to_pandas_takes_columns_where_and_a_row_range(store):
    rng = np.random.default_rng(5)
    df = pd.DataFrame(
        {"a": rng.integers(0, 10, 500), "b": rng.normal(size=500)},
        index=pd.Index(np.arange(500) * 2, name="k"),
    )
    t = store.create_table("/t", df, chunk_rows=1024)
    store.commit()
    got = t.to_pandas(where="(a > lo) & (b < 0)", condvars={"lo": 4}, start=100, stop=400)
    part = df.iloc[100:400]
    pd.testing.assert_frame_equal(got, part[(part.a > 4) & (part.b < 0)])
    pd.testing.assert_frame_equal(t.to_pandas(start=7, stop=20), df.iloc[7:20])
    just_b = t.to_pandas(columns=["b"])  # the index columns not read: no index
    pd.testing.assert_frame_equal(just_b, df[["b"]].reset_index(drop=True))


def _nothing_changed(store, t, rows):
    assert "/bad" not in store
    assert len(store.keys()) == 1
    store.commit()
    assert t.nrows == rows


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"x": [1, "a", 2.5]}), "Python objects of types float, int, str"),
        (pd.DataFrame({"x": pd.period_range("2020", periods=2, freq="M")}), "period"),
        (pd.DataFrame({"x": pd.interval_range(0, 2)}), "interval"),
        (pd.DataFrame({"x": pd.arrays.SparseArray([0, 1, 0])}), r"Sparse\[int64, 0\] has no"),
        (pd.DataFrame({"x": [1, None, "c"]}), "Python objects of types int, str"),
    ],
)
def test_a_frame_without_a_colvault_type_creates_nothing(store, frame, message):
    t = store.create_table("/keep", {"x": "i8"})
    with pytest.raises(colvault.SchemaError, match=message):
        store.create_table("/bad", frame)
    _nothing_changed(store, t, 0)


def test_a_bad_row_in_a_frame_creates_nothing(store):
    t = store.create_table("/keep", {"x": "i8"})
    df = pd.DataFrame({"when": pd.to_datetime(["2020-01-01"]).tz_localize("UTC")})
    bad = pd.DataFrame({"x": [1, 2]}, index=pd.DatetimeIndex(["2020", "2021"], name="t"))
    bad["x"] = bad["x"].astype(object)
    bad.loc[bad.index[1], "x"] = "two"
    with pytest.raises(colvault.SchemaError):
        store.create_table("/bad", bad)
    _nothing_changed(store, t, 0)
    assert store.create_table("/z", df) is not None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"when": pd.to_datetime(["2024-01-01"]).tz_localize("UTC")}),
            r"is in time zone Europe/Paris, the frame's is UTC: tz_convert\('Europe/Paris'\)",
        ),
        (
            pd.DataFrame({"when": pd.to_datetime(["2024-01-01"])}),
            r"the frame's timestamps have none: tz_localize\('Europe/Paris'\)",
        ),
    ],
)
def test_a_time_zone_that_differs_from_the_table_s_is_refused(store, frame, message):
    df = pd.DataFrame({"when": pd.to_datetime(["2024-01-01"]).tz_localize("Europe/Paris")})
    t = store.create_table("/t", df)
    store.commit()
    with pytest.raises(colvault.SchemaError, match=message):
        t.append(frame)
    store.commit()
    assert t.nrows == 1


def test_zone_aware_values_into_a_naive_column_are_refused(store):
    t = store.create_table("/t", {"when": "M8[ns]"})
    with pytest.raises(colvault.SchemaError, match="has no time zone: tz_convert"):
        t.append(pd.DataFrame({"when": pd.to_datetime(["2024-01-01"]).tz_localize("UTC")}))


def test_a_named_index_the_table_lacks_is_not_dropped_silently(store):
    t = store.create_table("/t", {"v": "f8"})
    with pytest.raises(colvault.SchemaError, match="index 'when' is not a column"):
        t.append(pd.DataFrame({"v": [1.0]}, index=pd.DatetimeIndex(["2020-01-01"], name="when")))
    t.append(pd.DataFrame({"v": [1.0, 2.0]}).iloc[1:])  # positions only: no data lost
    store.commit()
    assert t.nrows == 1


def test_a_schema_spells_a_zone_and_refuses_unknown_ones(store):
    t = store.create_table("/t", {"when": "datetime64[ms, Asia/Tokyo]"})
    assert t.dtypes == {"when": "datetime64[ms, Asia/Tokyo]"}
    with pytest.raises(colvault.SchemaError, match="column 'when': time zone 'Mars/Olympus'"):
        store.create_table("/u", {"when": "datetime64[ns, Mars/Olympus]"})
    with pytest.raises(colvault.SchemaError, match=r"column 'when': 'xx' .* is not a time unit"):
        store.create_table("/u", {"when": "datetime64[xx, UTC]"})


def test_schemas_without_zones_or_index_keep_their_old_json():
    spec = ColumnSpec("c" * 32, "x", np.dtype("f8"))
    schema = TableSchema((spec,), 1024)
    assert schema.to_json() == {
        "columns": [{"id": "c" * 32, "name": "x", "dtype": "<f8", "shape": []}],
        "chunk_rows": 1024,
    }
    assert TableSchema.from_json(json.loads(json.dumps(schema.to_json()))) == schema


def test_category_columns_come_back_as_categoricals(store):
    df = pd.DataFrame({"station": pd.Categorical(["south", "north", "south", "east"])})
    t = store.create_table("/t", df)
    assert t.dtypes == {"station": "category"}
    store.commit()
    out = t.to_pandas()
    assert isinstance(out["station"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(out, df)
    assert list(t.to_pandas(where="station == 'south'")["station"]) == ["south", "south"]


def test_a_table_with_an_index_takes_any_frame_s_index(store):
    """A table made from a filtered frame (its index stored as "index") takes later frames'
    indexes, the default RangeIndex too, as HDFStore's tables do."""
    df = pd.DataFrame({"v": [1.0, 2.0, 3.0]})
    t = store.create_table("/t", df[df.v > 1])
    assert t.columns == ["index", "v"]
    t.append(pd.DataFrame({"v": [4.0]}))
    t.append(pd.DataFrame({"v": [5.0]}, index=pd.Index([9])))
    store.commit()
    assert t.read().tolist() == [(1, 2.0), (2, 3.0), (0, 4.0), (9, 5.0)]
    assert t.to_pandas().index.tolist() == [1, 2, 0, 9]


def test_a_range_index_that_is_not_the_default_is_stored(store):
    df = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.RangeIndex(5, 7))
    t = _round_trip(store, "/t", df.set_axis(pd.Index([5, 6]), axis=0))
    assert t.columns == ["index", "v"]
    t2 = store.create_table("/u", df)
    assert t2.columns == ["index", "v"]


def test_an_index_level_named_as_a_column_fills_it(store):
    t = store.create_table("/t", {"k": "i8", "v": "f8"})
    t.append(pd.DataFrame({"v": [1.0]}, index=pd.Index([7], name="k")))
    store.commit()
    assert t.read().tolist() == [(7, 1.0)]
