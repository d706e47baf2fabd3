# Response.json()'s decoder: the body's bytes straight to the objects json.loads builds
# (included into _models.pyx).
#
# json.loads(body) decodes the whole body to a str (UTF-8, "surrogatepass", once
# detect_encoding says UTF-8) and runs the standard scanner over it. These functions read
# the bytes once and build the same values, in the same order: dicts by PyDict_SetItem (a
# repeated key keeps its first place and its last value), lists, str (the JSON escapes,
# \uXXXX pairs joined, lone surrogates kept; raw UTF-8 decoded as "surrogatepass" does),
# int (PyLong_FromString beyond 18 digits, so sys.set_int_max_str_digits applies), float
# (the correctly rounded value of the literal, float(text)), True, False, None and json's
# own NaN and infinity objects. Whitespace is space, tab, CR and LF.
#
# They give up (NULL, any Python error left for the caller to clear) on everything else:
# a syntax error, a control character in a string, bytes that are not UTF-8, trailing
# data, nesting deeper than _JD_MAX_DEPTH or than the recursion limit allows (json calls
# Py_EnterRecursiveCall per container too), a failed allocation. The caller then runs
# json.loads itself, so every error is the standard library's own. A document these
# functions accept is valid JSON in UTF-8, so it has no BOM and no NUL: detect_encoding
# says UTF-8 for it. No Python code runs while they build (exact str keys, C-level types
# only), so nothing can observe or change a half-built document.

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from libc.string cimport memcpy, memset

cdef extern from "Python.h":
    PyObject* _jd_str_new "PyUnicode_New"(Py_ssize_t size, Py_UCS4 maxchar)
    void* _jd_str_data "PyUnicode_DATA"(PyObject* s)
    Py_ssize_t _jd_str_len "PyUnicode_GET_LENGTH"(PyObject* s)
    PyObject* _jd_str_utf8 "PyUnicode_DecodeUTF8"(const char* s, Py_ssize_t n, const char* errors)
    PyObject* _jd_str_ucs4 "PyUnicode_FromKindAndData"(int kind, const void* data, Py_ssize_t n)
    int _JD_UCS4_KIND "PyUnicode_4BYTE_KIND"
    PyObject* _jd_list_new "PyList_New"(Py_ssize_t size)
    int _jd_list_append "PyList_Append"(PyObject* lst, PyObject* item)
    PyObject* _jd_dict_new "PyDict_New"()
    int _jd_dict_set "PyDict_SetItem"(PyObject* d, PyObject* key, PyObject* value)
    PyObject* _jd_int "PyLong_FromLongLong"(long long value)
    PyObject* _jd_int_text "PyLong_FromString"(const char* text, char** end, int base)
    PyObject* _jd_float "PyFloat_FromDouble"(double value)
    double _jd_strtod "PyOS_string_to_double"(const char* text, char** end, PyObject* overflow)
    PyObject* _jd_error "PyErr_Occurred"()
    void _jd_clear_error "PyErr_Clear"()
    void _jd_incref "Py_INCREF"(PyObject* o)
    void _jd_decref "Py_DECREF"(PyObject* o)
    void _jd_xdecref "Py_XDECREF"(PyObject* o)
    int _jd_enter "Py_EnterRecursiveCall"(const char* where)
    void _jd_leave "Py_LeaveRecursiveCall"()

cdef extern from *:
    """
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    #define HTTPRS_JD_LITTLE_ENDIAN 1
    #define httprs_jd_ctz64(x) __builtin_ctzll(x)
    #else
    #define HTTPRS_JD_LITTLE_ENDIAN 0
    #define httprs_jd_ctz64(x) 0
    #endif
    """
    bint _JD_LITTLE_ENDIAN "HTTPRS_JD_LITTLE_ENDIAN"
    int _jd_ctz64 "httprs_jd_ctz64"(unsigned long long x) nogil

cdef extern from "<float.h>":
    int FLT_EVAL_METHOD  # 0: double arithmetic rounds once (SSE2, AArch64)

cdef enum:
    _JD_MAX_DEPTH = 512  # nested containers; deeper documents are json.loads's
    _JD_RESERVED_LEVELS = 8  # recursion levels kept for json.loads's own frames
    _JD_KEYS = 64  # slots of the key memo (a power of two)
    _JD_SMALL = 128  # characters of an escaped string decoded on the stack

cdef struct _JDoc:
    const unsigned char* p  # the next byte
    const unsigned char* end  # one past the last byte
    int depth
    int key_count  # keys in the memo
    # The key memo: ASCII keys met so far (strong references, or NULL: only these are
    # cleared for each document), their first eight bytes as a word and their sizes.
    PyObject* keys[_JD_KEYS]
    unsigned long long key_heads[_JD_KEYS]
    Py_ssize_t key_sizes[_JD_KEYS]


cdef bint _JD_PLAIN[256]  # what a string runs over: printable ASCII but quote, backslash
cdef double _JD_POW10[23]  # 10**0 .. 10**22, every one exact as a double
# Eight 0xFF bytes then eight zeros: the eight bytes at _JD_MASK + 8 - n keep the first n
# bytes of a word loaded from memory, whatever the byte order.
cdef unsigned char _JD_MASK[16]


cdef void _jd_tables() noexcept:
    cdef int i
    for i in range(256):
        _JD_PLAIN[i] = 0x20 <= i < 0x80 and i != 0x22 and i != 0x5C
    _JD_POW10[0] = 1.0
    for i in range(16):
        _JD_MASK[i] = 0xFF if i < 8 else 0
    for i in range(1, 23):
        _JD_POW10[i] = _JD_POW10[i - 1] * 10.0


_jd_tables()

# json's own NaN and infinities (parse_constant gives these objects).
cdef object _jd_nan = jsonlib.decoder.NaN
cdef object _jd_inf = jsonlib.decoder.PosInf
cdef object _jd_neg_inf = jsonlib.decoder.NegInf


cdef inline bint _jd_digit(unsigned char c) noexcept nogil:
    return 0x30 <= c <= 0x39


cdef inline void _jd_skip(_JDoc* d) noexcept nogil:
    """Past JSON whitespace: space, tab, LF, CR."""
    cdef const unsigned char* p = d.p
    while p < d.end and (p[0] == c' ' or p[0] == c'\n' or p[0] == c'\r' or p[0] == c'\t'):
        p += 1
    d.p = p


cdef inline PyObject* _jd_ascii(const unsigned char* s, Py_ssize_t n) noexcept:
    """A new str of the n ASCII bytes at s."""
    cdef PyObject* r = _jd_str_new(n, 127)
    if r != NULL:
        memcpy(_jd_str_data(r), s, n)
    return r


cdef PyObject* _jd_word(_JDoc* d, const char* word, Py_ssize_t n, object value) noexcept:
    """`value` when the n bytes of `word` come next (true, false, null, NaN, ...)."""
    cdef Py_ssize_t i
    if d.end - d.p < n:
        return NULL
    for i in range(n):
        if d.p[i] != <unsigned char>word[i]:
            return NULL
    d.p += n
    _jd_incref(<PyObject*>value)
    return <PyObject*>value


cdef PyObject* _jd_value(_JDoc* d) noexcept:
    """The value at d.p (whitespace already skipped), or NULL."""
    if d.p >= d.end:
        return NULL
    cdef unsigned char c = d.p[0]
    if c == c'"':
        d.p += 1
        return _jd_string(d)
    if c == c'{' or c == c'[':
        return _jd_container(d, c)
    if c == c'-' and d.end - d.p > 1 and d.p[1] == c'I':
        return _jd_word(d, b"-Infinity", 9, _jd_neg_inf)
    if c == c'-' or _jd_digit(c):
        return _jd_number(d)
    if c == c't':
        return _jd_word(d, b"true", 4, True)
    if c == c'f':
        return _jd_word(d, b"false", 5, False)
    if c == c'n':
        return _jd_word(d, b"null", 4, None)
    if c == c'N':
        return _jd_word(d, b"NaN", 3, _jd_nan)
    if c == c'I':
        return _jd_word(d, b"Infinity", 8, _jd_inf)
    return NULL


cdef PyObject* _jd_container(_JDoc* d, unsigned char opening) noexcept:
    """The object or array opening at d.p, one level deeper."""
    cdef PyObject* r
    if d.depth >= _JD_MAX_DEPTH:
        return NULL
    if _jd_enter(" while decoding a JSON document"):
        return NULL  # RecursionError, as json's scanner would raise
    d.depth += 1
    d.p += 1
    r = _jd_object(d) if opening == c'{' else _jd_array(d)
    d.depth -= 1
    _jd_leave()
    return r


cdef inline int _jd_after_item(_JDoc* d, unsigned char closing) noexcept:
    """After an item: 1 for a comma (whitespace after it skipped), 0 for the closing
    bracket, -1 for anything else."""
    cdef unsigned char c
    _jd_skip(d)
    if d.p >= d.end:
        return -1
    c = d.p[0]
    d.p += 1
    if c == c',':
        _jd_skip(d)
        return 1
    return 0 if c == closing else -1


cdef PyObject* _jd_array(_JDoc* d) noexcept:
    cdef PyObject* item
    cdef int status
    cdef PyObject* lst = _jd_list_new(0)
    if lst == NULL:
        return NULL
    _jd_skip(d)
    if d.p < d.end and d.p[0] == c']':
        d.p += 1
        return lst
    while True:
        item = _jd_value(d)
        if item == NULL:
            break
        status = _jd_list_append(lst, item)
        _jd_decref(item)
        if status < 0:
            break
        status = _jd_after_item(d, c']')
        if status == 0:
            return lst
        if status < 0:
            break
    _jd_decref(lst)
    return NULL


cdef PyObject* _jd_object(_JDoc* d) noexcept:
    cdef PyObject* key
    cdef PyObject* value
    cdef int status
    cdef PyObject* dct = _jd_dict_new()
    if dct == NULL:
        return NULL
    _jd_skip(d)
    if d.p < d.end and d.p[0] == c'}':
        d.p += 1
        return dct
    while True:
        if d.p >= d.end or d.p[0] != c'"':
            break
        d.p += 1
        key = _jd_key(d)
        if key == NULL:
            break
        _jd_skip(d)
        if d.p >= d.end or d.p[0] != c':':
            _jd_decref(key)
            break
        d.p += 1
        _jd_skip(d)
        value = _jd_value(d)
        if value == NULL:
            _jd_decref(key)
            break
        status = _jd_dict_set(dct, key, value)
        _jd_decref(key)
        _jd_decref(value)
        if status < 0:
            break
        status = _jd_after_item(d, c'}')
        if status == 0:
            return dct
        if status < 0:
            break
    _jd_decref(dct)
    return NULL


cdef inline const unsigned char* _jd_plain_end(_JDoc* d) noexcept nogil:
    """Where the run of plain bytes from d.p ends, eight bytes at a time: a byte below
    0x20, a quote, a backslash or one with the high bit set sets the high bit of its lane
    in `stop`. False alarms only ever come in lanes after a true one (later in memory, on
    a little-endian machine), so the lowest lane set is the first stop; elsewhere the
    block is scanned byte by byte."""
    cdef const unsigned char* p = d.p
    cdef unsigned long long w
    cdef unsigned long long quote
    cdef unsigned long long backslash
    cdef unsigned long long stop
    while d.end - p >= 8:
        memcpy(&w, p, 8)
        quote = w ^ 0x2222222222222222ULL
        backslash = w ^ 0x5C5C5C5C5C5C5C5CULL
        stop = (
            ((w - 0x2020202020202020ULL) & ~w)
            | ((quote - 0x0101010101010101ULL) & ~quote)
            | ((backslash - 0x0101010101010101ULL) & ~backslash)
            | w
        ) & 0x8080808080808080ULL
        if stop:
            if _JD_LITTLE_ENDIAN:
                return p + (_jd_ctz64(stop) >> 3)
            break
        p += 8
    while p < d.end and _JD_PLAIN[p[0]]:
        p += 1
    return p


cdef PyObject* _jd_string(_JDoc* d) noexcept:
    """The string whose opening quote is just before d.p."""
    cdef const unsigned char* p = _jd_plain_end(d)
    cdef const unsigned char* s = d.p
    if p < d.end and p[0] == c'"':
        d.p = p + 1
        return _jd_ascii(s, p - s)
    return _jd_string_rest(d, p)


cdef inline unsigned long long _jd_load8(const unsigned char* p) noexcept nogil:
    cdef unsigned long long w
    memcpy(&w, p, 8)
    return w


cdef PyObject* _jd_key(_JDoc* d) noexcept:
    """A key string: a plain ASCII key met before in this document is the same object
    again (json memoises its keys too), so repeated keys cost neither a str nor a hash.
    The memo is an open-addressed table of _JD_KEYS slots holding up to half as many
    keys (later new keys are not kept); a slot keeps its key's first eight bytes as a
    word, so keys of up to eight bytes compare in one step."""
    cdef const unsigned char* p = _jd_plain_end(d)
    cdef const unsigned char* s = d.p
    cdef Py_ssize_t n = p - s
    cdef unsigned long long head
    cdef unsigned long long h
    cdef PyObject* key
    if p >= d.end or p[0] != c'"':
        return _jd_string_rest(d, p)
    d.p = p + 1
    if d.end - s < 8:
        return _jd_ascii(s, n)  # too near the end to load a word: not memoised
    head = _jd_load8(s) & _jd_load8(_JD_MASK + 8 - (n if n < 8 else 8))
    h = (head ^ <unsigned long long>n) * 0x9E3779B97F4A7C15ULL
    if n > 8:
        h ^= _jd_load8(s + n - 8) * 0xC2B2AE3D27D4EB4FULL
    h >>= 58  # _JD_KEYS = 64 slots: the top six bits
    while True:
        h &= _JD_KEYS - 1
        key = d.keys[h]
        if key == NULL:
            break
        if (
            d.key_sizes[h] == n
            and d.key_heads[h] == head
            and (n <= 8 or memcmp(<const char*>_jd_str_data(key) + 8, s + 8, n - 8) == 0)
        ):
            _jd_incref(key)
            return key
        h += 1
    key = _jd_ascii(s, n)
    if key != NULL and d.key_count < _JD_KEYS // 2:
        d.key_count += 1
        _jd_incref(key)
        d.keys[h] = key
        d.key_heads[h] = head
        d.key_sizes[h] = n
    return key


cdef PyObject* _jd_string_rest(_JDoc* d, const unsigned char* p) noexcept:
    """A string with something other than plain ASCII in it, from d.p (after its opening
    quote); p is where its plain start ends."""
    cdef const unsigned char* s = d.p
    cdef bint escaped = False
    cdef unsigned char c
    while True:
        if p >= d.end:
            return NULL  # unterminated
        c = p[0]
        if c == c'"':
            break
        if c == c'\\':
            if d.end - p < 2:
                return NULL
            escaped = True
            p += 2
        elif c < 0x20:
            return NULL  # a control character: json's strict mode refuses it
        else:
            p += 1
    d.p = p + 1
    if not escaped:
        return _jd_str_utf8(<const char*>s, p - s, "surrogatepass")
    return _jd_unescape(s, p)


cdef int _jd_hex4(const unsigned char* p) noexcept nogil:
    """The value of the four hex digits at p, or -1."""
    cdef int value = 0
    cdef int i
    cdef unsigned char c
    for i in range(4):
        c = p[i]
        if _jd_digit(c):
            value = value * 16 + (c - 0x30)
        elif c'a' <= (c | 0x20) <= c'f':
            value = value * 16 + ((c | 0x20) - 0x57)
        else:
            return -1
    return value


cdef long _jd_escape(const unsigned char** at, const unsigned char* end) noexcept nogil:
    """The character of the escape at *at (a backslash, its next byte before end), or -1;
    moves *at past it. A high surrogate followed by a low one's escape joins it, as json
    does; any other surrogate stays alone."""
    cdef const unsigned char* p = at[0]
    cdef long c = p[1]
    cdef long low
    at[0] = p + 2
    if c == c'"' or c == c'\\' or c == c'/':
        return c
    if c == c'b':
        return 0x08
    if c == c'f':
        return 0x0C
    if c == c'n':
        return 0x0A
    if c == c'r':
        return 0x0D
    if c == c't':
        return 0x09
    if c != c'u' or end - p < 6:
        return -1
    c = _jd_hex4(p + 2)
    at[0] = p + 6
    if c < 0:
        return -1
    if 0xD800 <= c <= 0xDBFF and end - p >= 12 and p[6] == c'\\' and p[7] == c'u':
        low = _jd_hex4(p + 8)
        if low < 0:
            return -1  # json refuses a bad escape right after a high surrogate
        if 0xDC00 <= low <= 0xDFFF:
            at[0] = p + 12
            return 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00)
    return c


cdef long _jd_utf8(const unsigned char** at, const unsigned char* end) noexcept nogil:
    """The character of the UTF-8 sequence at *at, or -1 where bytes.decode("utf-8",
    "surrogatepass") fails; moves *at past it. Encoded surrogates (ED A0..BF ..) pass."""
    cdef const unsigned char* p = at[0]
    cdef long c = p[0]
    cdef Py_ssize_t n
    cdef Py_ssize_t i
    if c < 0xC2 or c > 0xF4:
        return -1
    n = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
    if end - p < n:
        return -1
    for i in range(1, n):
        if p[i] & 0xC0 != 0x80:
            return -1
    if (c == 0xE0 and p[1] < 0xA0) or (c == 0xF0 and p[1] < 0x90) or (c == 0xF4 and p[1] > 0x8F):
        return -1  # overlong, or beyond U+10FFFF
    c &= 0x1F if n == 2 else 0x0F if n == 3 else 0x07
    for i in range(1, n):
        c = (c << 6) | (p[i] & 0x3F)
    at[0] = p + n
    return c


cdef PyObject* _jd_unescape(const unsigned char* s, const unsigned char* end) noexcept:
    """The str of the escaped string body [s, end): characters first written as UCS-4
    (never more of them than bytes), then narrowed by PyUnicode_FromKindAndData."""
    cdef Py_UCS4 small[_JD_SMALL]
    cdef Py_UCS4* buf = small
    cdef Py_ssize_t n = 0
    cdef long c = 0
    cdef PyObject* r = NULL
    if end - s > _JD_SMALL:
        buf = <Py_UCS4*>PyMem_Malloc((end - s) * sizeof(Py_UCS4))
        if buf == NULL:
            return NULL
    while s < end:
        c = s[0]
        if c == c'\\':
            c = _jd_escape(&s, end)
        elif c < 0x80:
            s += 1
        else:
            c = _jd_utf8(&s, end)
        if c < 0:
            break
        buf[n] = <Py_UCS4>c
        n += 1
    if c >= 0:
        r = _jd_str_ucs4(_JD_UCS4_KIND, buf, n)
    if buf != small:
        PyMem_Free(buf)
    return r


cdef PyObject* _jd_number(_JDoc* d) noexcept:
    """The number at d.p, scanned as json's scanner does: -?(0|[1-9][0-9]*), then a
    fraction only with a digit after the point, an exponent only with a digit in it."""
    cdef const unsigned char* s = d.p
    cdef const unsigned char* p = s
    cdef const unsigned char* q
    cdef bint is_float = False
    if p[0] == c'-':
        p += 1
    if p >= d.end or not _jd_digit(p[0]):
        return NULL
    if p[0] == c'0':
        p += 1
    else:
        while p < d.end and _jd_digit(p[0]):
            p += 1
    if d.end - p > 1 and p[0] == c'.' and _jd_digit(p[1]):
        is_float = True
        p += 2
        while p < d.end and _jd_digit(p[0]):
            p += 1
    if p < d.end and (p[0] == c'e' or p[0] == c'E'):
        q = p + 1
        if q < d.end and (q[0] == c'+' or q[0] == c'-'):
            q += 1
        if q < d.end and _jd_digit(q[0]):
            is_float = True
            while q < d.end and _jd_digit(q[0]):
                q += 1
            p = q
    d.p = p
    if is_float:
        return _jd_float_of(s, p)
    return _jd_int_of(s, p)


cdef PyObject* _jd_int_of(const unsigned char* s, const unsigned char* end) noexcept:
    """The int of the literal [s, end): directly up to 18 digits, else PyLong_FromString
    (which applies the interpreter's int max str digits limit)."""
    cdef bint negative = s[0] == c'-'
    cdef const unsigned char* p = s + negative
    cdef long long value = 0
    if end - p > 18:
        return _jd_parse_text(s, end - s, False)
    while p < end:
        value = value * 10 + (p[0] - 0x30)
        p += 1
    return _jd_int(-value if negative else value)


cdef PyObject* _jd_float_of(const unsigned char* s, const unsigned char* end) noexcept:
    """The float of the literal [s, end), correctly rounded as float(text) is. When the
    digits fit in 53 bits and the power of ten is exact (|e| <= 22), one multiplication or
    division rounds correctly; anything else goes to PyOS_string_to_double."""
    cdef bint negative = s[0] == c'-'
    cdef const unsigned char* p = s + negative
    cdef unsigned long long digits = 0
    cdef int significant = 0
    cdef Py_ssize_t fraction = -1  # digits after the point; -1 before it
    cdef Py_ssize_t exponent = 0
    cdef bint exponent_negative = False
    cdef double value
    while p < end and (_jd_digit(p[0]) or p[0] == c'.'):
        if p[0] == c'.':
            fraction = 0
        else:
            if digits or p[0] != c'0':
                digits = digits * 10 + (p[0] - 0x30)
                significant += 1
                if significant > 19:
                    return _jd_parse_text(s, end - s, True)
            if fraction >= 0:
                fraction += 1
        p += 1
    if p < end:  # the exponent
        p += 1
        if p[0] == c'+' or p[0] == c'-':
            exponent_negative = p[0] == c'-'
            p += 1
        while p < end:
            exponent = exponent * 10 + (p[0] - 0x30)
            if exponent > 100000:  # a long fraction could bring a cut one back in range
                return _jd_parse_text(s, end - s, True)
            p += 1
    exponent = (-exponent if exponent_negative else exponent) - (fraction if fraction > 0 else 0)
    if digits == 0:
        value = 0.0
    elif FLT_EVAL_METHOD == 0 and digits <= (1ULL << 53) and -22 <= exponent <= 22:
        value = <double>digits
        value = value * _JD_POW10[exponent] if exponent >= 0 else value / _JD_POW10[-exponent]
    else:
        return _jd_parse_text(s, end - s, True)
    return _jd_float(-value if negative else value)


cdef PyObject* _jd_parse_text(const unsigned char* s, Py_ssize_t n, bint is_float) noexcept:
    """int or float of the n-byte literal at s by CPython's own parsers, as json calls
    them (PyLong_FromString, or float()'s PyOS_string_to_double)."""
    cdef char small[64]
    cdef char* text = small
    cdef double value
    cdef PyObject* r = NULL
    if n >= 64:
        text = <char*>PyMem_Malloc(n + 1)
        if text == NULL:
            return NULL
    memcpy(text, s, n)
    text[n] = 0
    if not is_float:
        r = _jd_int_text(text, NULL, 10)
    else:
        value = _jd_strtod(text, NULL, NULL)
        if not (value == -1.0 and _jd_error() != NULL):
            r = _jd_float(value)
    if text != small:
        PyMem_Free(text)
    return r


cdef object _json_decode(bytes raw):
    """What json.loads(raw) returns for a UTF-8 document, or _MISSING where it must be
    asked (an error, or a document these functions leave to it)."""
    cdef _JDoc d
    cdef PyObject* r
    cdef int i
    d.p = <const unsigned char*>PyBytes_AS_STRING(raw)
    d.end = d.p + PyBytes_GET_SIZE(raw)
    d.depth = 0
    d.key_count = 0
    memset(d.keys, 0, sizeof(d.keys))
    # json.loads reaches its scanner through a few Python frames (loads, decode,
    # raw_decode) that share the recursion budget: hold that many levels in reserve, so
    # this decoder gives up before json would raise RecursionError, never after.
    for i in range(_JD_RESERVED_LEVELS):
        if _jd_enter(" while decoding a JSON document"):
            while i > 0:
                _jd_leave()
                i -= 1
            _jd_clear_error()
            return _MISSING
    _jd_skip(&d)
    r = _jd_value(&d)
    if r != NULL:
        _jd_skip(&d)
        if d.p != d.end:
            _jd_decref(r)  # trailing data
            r = NULL
    for i in range(_JD_RESERVED_LEVELS):
        _jd_leave()
    for i in range(_JD_KEYS):
        _jd_xdecref(d.keys[i])
    if r == NULL:
        _jd_clear_error()
        return _MISSING
    value = <object>r
    _jd_decref(r)
    return value
