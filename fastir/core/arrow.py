"""Arrow IPC files written atomically (:func:`write_table`), and Arrow arrays built straight from
numpy buffers and string lists, for the outputs of ``fastir score``.

``pyarrow.array`` asks pandas, for every input that is not already Arrow, whether it is a pandas
object, importing pandas to do so when it is installed: 0.25–0.5 s of a command that otherwise
never touches pandas. These builders hand Arrow the buffers themselves (the same arrays, the same
files), so scoring a run and writing its outputs import no pandas.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from fastir.core.outputs import atomic_path

_NUMPY = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float32(): np.float32, pa.float64(): np.float64}
_FIXED_WIDTH = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
                pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
                pa.float16(): np.float16, pa.float32(): np.float32, pa.float64(): np.float64}


def to_numpy(values) -> np.ndarray:
    """A fixed-width Arrow array or chunked array without nulls as a numpy array (read-only, zero-copy
    for one chunk): ``.to_numpy()`` without the pandas import."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    if values.null_count:
        raise ValueError("to_numpy: the array holds nulls")
    dtype = np.dtype(_FIXED_WIDTH[values.type])
    parts = [np.frombuffer(c.buffers()[1], dtype=dtype, count=len(c), offset=c.offset * dtype.itemsize)
             if len(c) else np.zeros(0, dtype) for c in chunks]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def as_numpy(values) -> np.ndarray:
    """Any fixed-width or boolean Arrow array without nulls as a numpy array (booleans as ``bool``), pandas-free."""
    import pyarrow.compute as pc

    if pa.types.is_boolean(values.type):
        return to_numpy(pc.cast(values, pa.uint8())).astype(np.bool_)
    return to_numpy(values)


def numeric_array(values, type: pa.DataType, valid=None) -> pa.Array:
    """``values`` (array-like) as an Arrow array of ``type`` (int32, int64, float32 or float64).

    ``valid``: optional booleans, False = null (the value underneath is ignored). NaN stays NaN.
    """
    data = np.ascontiguousarray(values, dtype=_NUMPY[type]).reshape(-1)
    bitmap, nulls = None, 0
    if valid is not None:
        valid = np.asarray(valid, dtype=np.bool_).reshape(-1)
        nulls = int(len(valid) - np.count_nonzero(valid))
        if nulls:
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(type, len(data), [bitmap, pa.py_buffer(data)], null_count=nulls)


def string_array(values: Sequence[str]) -> pa.Array:
    """A list of Python strings as an Arrow ``string`` array (no nulls)."""
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array without nulls as its (offsets int32 (n + 1), data uint8) buffers, read-only numpy
    views of Arrow's memory (no copy; a large_string or chunked array is converted first), for the kernels of
    :mod:`fastir.kernels.ids`."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    if values.null_count:
        raise ValueError("string_buffers: the array holds nulls")
    _, offsets, data = values.buffers()
    off = (np.frombuffer(offsets, np.int32, count=len(values) + 1, offset=values.offset * 4) if len(values)
           else np.zeros(1, np.int32))
    data = np.frombuffer(data, np.uint8) if data is not None and data.size else np.zeros(0, np.uint8)
    off.flags.writeable = data.flags.writeable = False  # always read-only: one type for the kernels
    return off, data


def repeat_string(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times, as an Arrow ``string`` array."""
    return pa.repeat(string_array([value])[0], n)


# Rows per record batch when writing whole arrays (~64 MiB of embeddings per batch).
_BATCH_BYTES = 64 << 20


def write_table(path: str | os.PathLike, table: pa.Table) -> None:
    """Write an Arrow IPC file (uncompressed, memory-mappable) under a temporary name, then rename."""
    with atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=_rows_per_batch(table))


def _rows_per_batch(table: pa.Table) -> int:
    if "embedding" not in table.column_names:
        return max(1, table.num_rows)
    return embedding_batch_rows(table.schema)


def embedding_batch_rows(schema: pa.Schema) -> int:
    t = schema.field("embedding").type
    row_bytes = t.list_size * t.value_type.bit_width // 8
    return max(1, _BATCH_BYTES // max(1, row_bytes))
