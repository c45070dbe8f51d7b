"""fastir.core.errors: the one-line messages of InputError, the failures of the environment that
from_environment turns into them (docs/design.md, "Failures, leftovers and concurrent writers"), and
warnings attributed to the caller of the library function that warns."""

from __future__ import annotations

import errno
import inspect
import os
import warnings

import pytest

from fastir.core.errors import EXIT_BAD_INPUT, FastirError, FastirWarning, InputError, from_environment, warn

PERMISSION_HINT = "choose a location you can write to (or fix its permissions)"
DISK_HINT = "free some space (or write elsewhere) and rerun (embed and train: with --resume)"


def _library_function(message):
    warn(message)  # as a library function does: the warning names whoever called _library_function


def test_warn_is_a_fastir_warning_located_at_the_callers_call():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        _library_function("fell back to the CPU")
    (w,) = caught
    assert issubclass(w.category, FastirWarning) and issubclass(w.category, UserWarning)
    assert str(w.message) == "fell back to the CPU"
    assert (w.filename, w.lineno) == (__file__, line)


def test_input_error_names_file_and_field_on_one_line():
    err = InputError("data/run.json", "dtype", "expected float16 or float32,\n  found 'int8'")
    assert str(err).startswith("data/run.json: dtype: expected")
    assert err.one_line() == "data/run.json: dtype: expected float16 or float32, found 'int8'"
    assert (err.path, err.field) == ("data/run.json", "dtype")
    assert isinstance(err, FastirError) and err.exit_code == EXIT_BAD_INPUT == 2
    assert str(InputError(None, "--k", "must be positive")) == "--k: must be positive"
    assert str(InputError(None, None, "nothing to do")) == "nothing to do"
    assert str(InputError(os.path.join("a", "b"), None, "missing")) == f"{os.path.join('a', 'b')}: missing"


def test_a_path_inside_a_temporary_entry_is_shown_as_its_output(tmp_path):
    temp = tmp_path / f".scores.fastir-tmp-{os.getpid()}-x1y2" / "pairs.csv"
    err = InputError(temp, "csv", "bad")
    assert err.path == str(tmp_path / "scores" / "pairs.csv")
    assert str(err) == f"{tmp_path / 'scores' / 'pairs.csv'}: csv: bad"


@pytest.mark.parametrize("code, field, hint", [
    (errno.EACCES, "permission", PERMISSION_HINT),
    (errno.EPERM, "permission", PERMISSION_HINT),
    (errno.EROFS, "permission", PERMISSION_HINT),
    (errno.ENOSPC, "disk", DISK_HINT),
    (errno.EDQUOT, "disk", DISK_HINT),
    (errno.EFBIG, "disk", DISK_HINT),
    (errno.EIO, "io", None),
    (errno.ENOENT, "os", None),
])
def test_os_errors_map_to_the_documented_lines(tmp_path, code, field, hint):
    target = tmp_path / "out" / "summary.json"
    exc = OSError(code, os.strerror(code), str(target))
    err = from_environment(exc)
    name = errno.errorcode[code]
    want = f"{target}: {field}: {os.strerror(code)} [{name}]" + (f"; {hint}" if hint else "")
    assert isinstance(err, InputError) and err.field == field
    assert err.one_line() == want and "\n" not in str(err)


def test_the_documented_examples_verbatim(tmp_path):
    out = tmp_path / "scores"
    assert str(from_environment(PermissionError(errno.EACCES, "Permission denied", str(out)))) == (
        f"{out}: permission: Permission denied [EACCES]; {PERMISSION_HINT}")
    assert str(from_environment(OSError(errno.ENOSPC, "No space left on device", str(out)))) == (
        f"{out}: disk: No space left on device [ENOSPC]; {DISK_HINT}")


def test_os_errors_name_the_output_not_the_temporary_and_accept_bytes(tmp_path):
    temp = tmp_path / f".run.fastir-tmp-{os.getpid()}-abc" / "queries.arrow"
    err = from_environment(OSError(errno.ENOSPC, "No space left on device", str(temp)))
    assert err.path == str(tmp_path / "run" / "queries.arrow")
    err = from_environment(OSError(errno.EACCES, "Permission denied", os.fsencode(tmp_path / "x")))
    assert err.path == str(tmp_path / "x")
    err = from_environment(OSError(errno.EACCES, "Permission denied"))  # no file: no location
    assert err.path is None and str(err).startswith("permission: Permission denied [EACCES]")


@pytest.mark.parametrize("exc, detail", [
    (MemoryError(), ""),
    (MemoryError("Unable to allocate 2.95 TiB for an array\n with shape (10, 10)"),
     " (Unable to allocate 2.95 TiB for an array with shape (10, 10))"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried"),
     " ([enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried)"),
])
def test_memory_errors_are_one_line(exc, detail):
    err = from_environment(exc)
    assert err.path is None and err.field == "memory"
    assert str(err) == ("memory: out of memory" + detail + "; ask for less (--k, --trec-depth, --samples, "
                        "--batch-size, --batch-tokens, --block-mb) or use a machine with more memory")


def test_torch_out_of_memory_and_safetensors_errors_by_class_name():
    out_of_memory = type("OutOfMemoryError", (RuntimeError,), {})
    assert from_environment(out_of_memory("CUDA out of memory. Tried to allocate 2 GiB")).field == "memory"
    safetensor_error = type("SafetensorError", (Exception,), {})
    err = from_environment(safetensor_error("Error while deserializing header:\n  MetadataIncompleteBuffer"))
    assert str(err) == ("weights: unreadable safetensors file (Error while deserializing header: "
                        "MetadataIncompleteBuffer): the model file is truncated or corrupt")


@pytest.mark.parametrize("exc", [ValueError("bad"), RuntimeError("some bug"), KeyError("x"), TypeError("t")])
def test_bugs_are_not_turned_into_input_errors(exc):
    assert from_environment(exc) is None


def test_an_os_error_inside_a_safetensors_error_is_that_os_error():
    # issue 31, item 15: a full disk while saving was reported as a truncated model file
    from safetensors import SafetensorError

    from fastir.core.errors import from_environment, os_error_in

    full = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                           '"No space left on device" })')
    assert str(from_environment(full)).startswith("disk: No space left on device [ENOSPC]")
    assert os_error_in(full, "/x/ckpt").filename == "/x/ckpt" and os_error_in(full).errno == 28
    damaged = SafetensorError("Error while deserializing header: MetadataIncompleteBuffer")
    assert os_error_in(damaged) is None and "truncated or corrupt" in str(from_environment(damaged))


def test_require_imports_an_installed_package_and_names_the_extra_of_a_missing_one():
    from fastir.core.errors import require

    assert require("json", "x", "reading JSON").dumps([1]) == "[1]"
    with pytest.raises(InputError) as info:
        require("fastir_no_such_module_x", "interop", "ranx export", distribution="no-such-dist")
    assert info.value.one_line() == ("ranx export needs the no-such-dist package, which is not installed: "
                                     "pip install 'fastir[interop]'")
