import subprocess
import sys


def test_import_from_any_directory(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import httprs; print(httprs.__version__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0.1.0"


def test_runtime_check_refuses_old_libuv_and_lenient_llhttp():
    """httprs._core checks, when imported, the libuv loaded at run time (>= 1.44, see
    src/engine_wait.cc) and that llhttp is strict; each failure is a clear ImportError."""
    import re
    from pathlib import Path

    import pytest

    from httprs import _core

    _core._check_runtime(0x012C00, True)  # 1.44.0, strict: fine
    _core._check_runtime(0x020000, True)
    with pytest.raises(ImportError, match=r"libuv >= 1\.44 \(found 1\.43\.0\)"):
        _core._check_runtime(0x012B00, True)
    with pytest.raises(ImportError, match="lenient llhttp"):
        _core._check_runtime(0x012C00, False)
    meson = (Path(__file__).resolve().parent.parent / "meson.build").read_text()
    assert re.search(r"dependency\('libuv', version: '>=1\.44'", meson)


def _tls_block_size(path):
    """The size of an ELF shared object's thread-local storage block (its PT_TLS
    program header's p_memsz; 0 without one). ELF64 little-endian only."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        off = phoff + i * phentsize
        if struct.unpack_from("<I", data, off)[0] == 7:  # PT_TLS
            return struct.unpack_from("<Q", data, off + 0x28)[0]  # p_memsz
    return 0


def test_extension_modules_keep_thread_locals_small():
    """glibc gives each thread its own zero-filled copy of a dlopen()ed module's whole
    TLS block the first time the thread touches any of its thread_locals: 64 KiB
    scratch arrays there made every thread that ran a request resident in 344 KiB
    more (src/scratch.h). Buffers are allocated on first use instead."""
    import platform
    from pathlib import Path

    import pytest

    from httprs import _core

    if platform.system() != "Linux" or platform.architecture()[0] != "64bit":
        pytest.skip("reads ELF64 program headers")
    modules = list(Path(_core.__file__).parent.glob("*.so"))
    assert Path(_core.__file__) in modules
    for path in modules:
        assert _tls_block_size(path) <= 4096, path
