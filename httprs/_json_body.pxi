# A JSON request body written straight to UTF-8 bytes (included into _content.pyx).
#
# httpx sends `json=` as json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
# allow_nan=False).encode("utf-8"). For a document made of exact dicts with str keys,
# lists, tuples, str, int, float, bool and None (what request bodies are), these
# functions write those bytes directly: no str per value, no list of chunks to join, no
# str of the whole document to encode again. Anything else (a subclass, another type, a
# non-str key, a NaN or infinity, a lone surrogate, nesting deeper than _JSON_MAX_DEPTH,
# which is also how a cycle ends here) makes them give up, and the caller encodes as
# before, so every result and every error stays the standard library's. No Python code
# runs while they write (only exact built-in types are read), so nothing can change the
# document meanwhile.

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_Next
from cpython.mem cimport PyMem_Free
from cpython.ref cimport PyObject
from cpython.unicode cimport (
    PyUnicode_AsUTF8AndSize,
    PyUnicode_DATA,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_READ,
)
from libc.math cimport isfinite
from libcpp.string cimport string

cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int* type) except NULL
    int Py_DTSF_ADD_DOT_0
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1
    bint PyUnicode_IS_ASCII(object o)

cdef int _JSON_MAX_DEPTH = 64
cdef const char* _HEX = b"0123456789abcdef"


cdef inline void _json_escape(string& out, unsigned int c):
    """A character json.dumps escapes: the quote, the backslash, the control characters."""
    if c == 0x22:
        out.append(b'\\"', 2)
    elif c == 0x5C:
        out.append(b"\\\\", 2)
    elif c == 0x0A:
        out.append(b"\\n", 2)
    elif c == 0x0D:
        out.append(b"\\r", 2)
    elif c == 0x09:
        out.append(b"\\t", 2)
    elif c == 0x08:
        out.append(b"\\b", 2)
    elif c == 0x0C:
        out.append(b"\\f", 2)
    else:  # another control character: \u00XX, lower-case hex as json writes it
        out.append(b"\\u00", 4)
        out.push_back(_HEX[(c >> 4) & 0xF])
        out.push_back(_HEX[c & 0xF])


cdef inline bint _json_plain(unsigned int c):
    return c >= 0x20 and c != 0x22 and c != 0x5C


cdef bint _json_str(string& out, str s) except -1:
    """Append `s` quoted and escaped as json.dumps(ensure_ascii=False) writes it, in
    UTF-8; False (nothing useful written) for a lone surrogate, which .encode("utf-8")
    refuses."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t start
    cdef Py_ssize_t size
    cdef const char* ascii
    cdef int kind
    cdef void* data
    cdef unsigned int c
    out.push_back(b'"')
    if PyUnicode_IS_ASCII(s):
        # Compact ASCII: its characters are its UTF-8; copy the runs between escapes.
        ascii = PyUnicode_AsUTF8AndSize(s, &size)
        while i < n:
            start = i
            while i < n and _json_plain(<unsigned char>ascii[i]):
                i += 1
            if i > start:
                out.append(ascii + start, i - start)
            if i < n:
                _json_escape(out, <unsigned char>ascii[i])
                i += 1
    else:
        kind = PyUnicode_KIND(s)
        data = PyUnicode_DATA(s)
        for i in range(n):
            c = PyUnicode_READ(kind, data, i)
            if c < 0x80:
                if _json_plain(c):
                    out.push_back(<char>c)
                else:
                    _json_escape(out, c)
            elif c < 0x800:
                out.push_back(<char>(0xC0 | (c >> 6)))
                out.push_back(<char>(0x80 | (c & 0x3F)))
            elif c < 0x10000:
                if 0xD800 <= c <= 0xDFFF:
                    return False
                out.push_back(<char>(0xE0 | (c >> 12)))
                out.push_back(<char>(0x80 | ((c >> 6) & 0x3F)))
                out.push_back(<char>(0x80 | (c & 0x3F)))
            else:
                out.push_back(<char>(0xF0 | (c >> 18)))
                out.push_back(<char>(0x80 | ((c >> 12) & 0x3F)))
                out.push_back(<char>(0x80 | ((c >> 6) & 0x3F)))
                out.push_back(<char>(0x80 | (c & 0x3F)))
    out.push_back(b'"')
    return True


cdef bint _json_number(string& out, object value) except -1:
    """An exact int as int.__repr__ writes it (one that fits in 64 bits; False for a
    larger one), or a finite exact float as float.__repr__ does (False for NaN and the
    infinities: allow_nan=False, the standard encoder raises its ValueError)."""
    cdef int overflow = 0
    cdef long long n
    cdef unsigned long long u
    cdef char digits[24]
    cdef int at = 24
    cdef double d
    cdef char* text
    if type(value) is int:
        n = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow:
            return False
        u = <unsigned long long>(-(n + 1)) + 1 if n < 0 else <unsigned long long>n
        while True:
            at -= 1
            digits[at] = <char>(0x30 + u % 10)
            u //= 10
            if u == 0:
                break
        if n < 0:
            at -= 1
            digits[at] = b"-"
        out.append(digits + at, 24 - at)
        return True
    d = <double>value
    if not isfinite(d):
        return False
    text = PyOS_double_to_string(d, b"r", 0, Py_DTSF_ADD_DOT_0, NULL)
    try:
        out.append(text)
    finally:
        PyMem_Free(text)
    return True


cdef bint _json_value(string& out, object value, int depth) except -1:
    cdef PyObject* key
    cdef PyObject* item
    cdef Py_ssize_t pos = 0
    cdef bint first = True
    t = type(value)
    if t is str:
        return _json_str(out, <str>value)
    if value is None:
        out.append(b"null", 4)
        return True
    if value is True:
        out.append(b"true", 4)
        return True
    if value is False:
        out.append(b"false", 5)
        return True
    if t is int or t is float:
        return _json_number(out, value)
    if depth >= _JSON_MAX_DEPTH:
        return False
    if t is dict:
        out.push_back(b"{")
        while PyDict_Next(value, &pos, &key, &item):
            if type(<object>key) is not str:
                return False  # json's key conversions: left to it
            if not first:
                out.push_back(b",")
            first = False
            if not _json_str(out, <str>key):
                return False
            out.push_back(b":")
            if not _json_value(out, <object>item, depth + 1):
                return False
        out.push_back(b"}")
        return True
    if t is list or t is tuple:
        out.push_back(b"[")
        for element in value:
            if not first:
                out.push_back(b",")
            first = False
            if not _json_value(out, element, depth + 1):
                return False
        out.push_back(b"]")
        return True
    return False


cdef bytes _json_body(object obj):
    """json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    .encode("utf-8"), written directly, or None where the standard encoder must decide."""
    cdef string out
    out.reserve(256)
    if not _json_value(out, obj, 0):
        return None
    return PyBytes_FromStringAndSize(out.data(), out.size())
