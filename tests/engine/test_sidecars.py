"""attrs (JSON key-value) and objects (restricted pickles), committed with the data."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import os
import pickle

import numpy as np
import pytest

import colvault
from colvault import ReadOnlyError, SchemaError, UnsafePickleError


def test_attrs_convert_and_sort(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "f8"})
        t.attrs["zeta"] = np.int64(3)
        t.attrs["alpha"] = np.arange(3, dtype="u2")
        t.attrs["gain"] = np.float32(0.5)
        t.attrs["nested"] = {"a": [1, (2, 3)], "when": np.datetime64("2025-03-01")}
        t.attrs["nan"] = float("nan")
        t.attrs["none"] = None
        del t.attrs["none"]
        with pytest.raises(KeyError):
            del t.attrs["none"]
        with pytest.raises(SchemaError, match="objects"):
            t.attrs["bytes"] = b"\x00"
        with pytest.raises(SchemaError, match="too large"):
            t.attrs["big"] = np.zeros(100_000)
        with pytest.raises(TypeError):
            t.attrs[1] = 2
    with colvault.open(store_path) as store:
        a = store["/t"].attrs
        assert list(a) == ["alpha", "gain", "nan", "nested", "zeta"]
        assert a["alpha"] == [0, 1, 2] and a["gain"] == 0.5 and a["zeta"] == 3
        assert a["nested"] == {"a": [1, [2, 3]], "when": "2025-03-01"}
        assert np.isnan(a["nan"])
        assert len(a) == 5 and "alpha" in a and "x" not in a
        with pytest.raises(ReadOnlyError):
            a["x"] = 1


def test_sidecars_commit_and_abort_with_the_data(store_path):
    with colvault.open(store_path, "w") as store:
        store.attrs["kept"] = 1
        store.commit()
        store.attrs["dropped"] = 2
        store.objects["dropped"] = [1]
        del store.attrs["kept"]
        assert "kept" not in store.attrs and store.attrs["dropped"] == 2
        store.abort()
        assert dict(store.attrs) == {"kept": 1} and len(store.objects) == 0


def test_removed_node_takes_its_sidecars(store_path):
    with colvault.open(store_path, "w") as store:
        store.create_group("/g").attrs["a"] = 1
        store.commit()
        store.remove("/g")
        store.create_group("/g")
        assert "a" not in store["/g"].attrs


OBJECTS = {
    "dict": {"a": [1, 2.5, "x"], "b": (None, True)},
    "array": np.arange(12.0).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
    "record": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    "scalar": np.float32(1.5),
    "dates": [datetime.datetime(2025, 3, 1, tzinfo=datetime.UTC), datetime.date(2025, 1, 2)],
    "ordered": collections.OrderedDict(b=1, a=2),
    "exact": (decimal.Decimal("1.10"), fractions.Fraction(1, 3), complex(1, 2)),
    "sets": (set([1, 2]), frozenset(["x"]), bytearray(b"ab"), b"raw", range(3), slice(1, 9)),
}


def test_objects_round_trip_through_the_allow_list(store_path):
    with colvault.open(store_path, "w") as store:
        for k, v in OBJECTS.items():
            store.objects[k] = v
        mutable = [1]
        store.objects["snapshot"] = mutable
        mutable.append(2)  # assignment pickled the value then
    with colvault.open(store_path) as store:
        assert store.objects["snapshot"] == [1]
        for k, v in OBJECTS.items():
            got = store.objects[k]
            if isinstance(v, np.ndarray):
                assert got.dtype == v.dtype and np.array_equal(got, v)
            else:
                assert got == v and type(got) is type(v)


class EvalGadget:
    def __reduce__(self):
        return (eval, ("__import__('os').environ.__setitem__('COLVAULT_PWNED', '1')",))


class RunstringGadget:
    def __reduce__(self):
        from numpy.testing._private.utils import runstring

        code = "__import__('os').environ.__setitem__('COLVAULT_PWNED', '2')"
        return (runstring, (code, {}))


class Harmless:
    pass


@pytest.mark.parametrize(
    "gadget, name",
    [
        (EvalGadget(), "builtins.eval"),
        (RunstringGadget(), "numpy.testing._private.utils.runstring"),
        (Harmless(), "Harmless"),
    ],
)
def test_unsafe_pickles_are_refused(store_path, gadget, name):
    with colvault.open(store_path, "w") as store:
        store.objects["safe"] = 1
        store.objects["evil"] = gadget
    with colvault.open(store_path) as store:
        with pytest.raises(UnsafePickleError, match=name) as info:
            store.objects["evil"]
        assert "objects['evil']" in str(info.value) and "trust_pickles" in str(info.value)
        assert isinstance(info.value, pickle.UnpicklingError)
        assert store.objects["safe"] == 1  # the rest of the sidecar is unaffected
    assert "COLVAULT_PWNED" not in os.environ


def test_trust_pickles_lifts_the_allow_list(store_path):
    with colvault.open(store_path, "w") as store:
        store.objects["counter"] = collections.Counter("aab")
    with colvault.open(store_path) as store, pytest.raises(UnsafePickleError):
        store.objects["counter"]
    with colvault.open(store_path, trust_pickles=True) as store:
        assert store.objects["counter"] == collections.Counter("aab")


def test_unpicklable_object(store_path):
    with colvault.open(store_path, "w") as store, pytest.raises(SchemaError, match="pickle"):
        store.objects["f"] = lambda: 1


def test_text_without_a_utf8_form_is_refused_when_set_not_at_commit(store_path):
    with colvault.open(store_path, "w") as store:
        t = store.create_table("/t", {"x": "f8"})
        t.attrs["kept"] = "yes"
        store.commit()
        with pytest.raises(SchemaError, match=r"/t\.attrs\['\\ud800'\].*surrogate"):
            t.attrs["\ud800"] = 1
        with pytest.raises(SchemaError, match=r"/t\.attrs\['v'\].*surrogate"):
            t.attrs["v"] = ["ok", "\udc80"]
        with pytest.raises(SchemaError, match="surrogate"):
            t.objects["\ud800"] = 1
        t.attrs["after"] = "é"
        store.commit()  # the refused values left nothing pending that breaks the commit
        assert dict(t.attrs) == {"after": "é", "kept": "yes"}
