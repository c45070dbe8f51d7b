"""Arrow arrays from numpy buffers and string lists: equal to pyarrow's own conversion, without pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from fastir.core.arrow import numeric_array, repeat_string, string_array, to_numpy


@pytest.mark.parametrize("type_", [pa.int32(), pa.int64(), pa.float32(), pa.float64()])
def test_numeric_array_equals_pa_array(type_):
    values = np.arange(10)[::3]  # not contiguous
    assert numeric_array(values, type_).equals(pa.array(values.astype(type_.to_pandas_dtype()), type_))
    assert numeric_array([], type_).equals(pa.array([], type_))


def test_numeric_array_nulls_and_nan():
    got = numeric_array([1.5, np.nan, 9.0, 2.0], pa.float64(), valid=[True, True, False, True])
    assert got.is_null().to_pylist() == [False, False, True, False]
    assert got.null_count == 1 and np.isnan(got[1].as_py())
    assert [got[i].as_py() for i in (0, 3)] == [1.5, 2.0]
    assert numeric_array([1.0], pa.float64(), valid=[True]).buffers()[0] is None


def test_string_array_and_repeat():
    values = ["en", "", "zh-Hans", "é→x"]
    assert string_array(values).equals(pa.array(values, pa.string()))
    assert string_array([]).equals(pa.array([], pa.string()))
    assert repeat_string("Q0", 3).equals(pa.array(["Q0"] * 3))
    assert len(repeat_string("Q0", 0)) == 0


def test_to_numpy_zero_copy_offsets_and_chunks():
    arr = pa.array(np.arange(20, dtype=np.int32)).slice(5, 7)
    view = to_numpy(arr)
    assert view.dtype == np.int32 and view.tolist() == list(range(5, 12))
    chunked = pa.chunked_array([pa.array(np.ones(3, np.float16)), pa.array(np.zeros(2, np.float16))])
    assert to_numpy(chunked).tolist() == [1, 1, 1, 0, 0]
    assert to_numpy(pa.chunked_array([], pa.int64())).tolist() == []
    with pytest.raises(ValueError, match="nulls"):
        to_numpy(pa.array([1, None], pa.int32()))


def test_builders_do_not_import_pandas():
    code = ("import sys, numpy as np, pyarrow as pa; from fastir.core.arrow import *; "
            "numeric_array(np.arange(3), pa.int64(), valid=[True, False, True]); string_array(['a']); "
            "repeat_string('Q0', 2); to_numpy(pa.chunked_array([numeric_array([1], pa.int32())])); "
            "assert 'pandas' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_as_numpy_of_numbers_and_booleans():
    import pyarrow as pa

    from fastir.core.arrow import as_numpy

    assert as_numpy(pa.array([1, 2, 3], pa.int64())).tolist() == [1, 2, 3]
    got = as_numpy(pa.array([True, False, True]))
    assert got.dtype == np.bool_ and got.tolist() == [True, False, True]


def test_string_buffers_are_read_only_views_of_any_string_array():
    from fastir.core.arrow import string_buffers

    def texts(buffers):
        off, data = buffers
        return [bytes(data[off[i]:off[i + 1]]).decode() for i in range(len(off) - 1)]

    base = pa.array(["ab", "", "é", "xyz"])
    for array in (base, base.slice(1, 2), base.cast(pa.large_string()), pa.chunked_array([base[:1], base[1:]])):
        off, data = string_buffers(array)
        assert off.dtype == np.int32 and data.dtype == np.uint8
        assert not off.flags.writeable and not data.flags.writeable
        assert texts((off, data)) == (["", "é"] if len(array) == 2 else ["ab", "", "é", "xyz"])
    assert texts(string_buffers(pa.array([], pa.string()))) == []
    assert texts(string_buffers(pa.array(["", ""]))) == ["", ""]
    with pytest.raises(ValueError, match="nulls"):
        string_buffers(pa.array(["a", None]))
