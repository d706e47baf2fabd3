# Python object helpers shared by the Cython modules (no C++ header behind them).

cdef extern from *:
    """
    /* object.__new__(cls) without the Python-level call: object's own tp_new, which
       also sets up the instance's inline attribute values as the plain call does (an
       instance allocated without that keeps its attributes in a separate dict). For
       classes that define no __new__ of their own. */
    static PyObject *httprs_object_new(PyObject *cls) {
        if (!PyType_Check(cls) || ((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new) {
            /* Not a plain class (a mock patched over the name, a class with a __new__ of
               its own): object.__new__'s checked call, which raises TypeError for a
               non-type instead of handing it to tp_new as one. */
            return PyObject_CallMethod((PyObject *)&PyBaseObject_Type, "__new__", "(O)", cls);
        }
        PyObject *args = PyTuple_New(0);
        if (args == NULL) return NULL;
        PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)cls, args, NULL);
        Py_DECREF(args);
        return obj;
    }
    /* Whether instances of `cls` are allocated by object's own tp_new (no __new__ of its
       own nor of a base): then object.__new__(cls) is what calling cls allocates. */
    static int httprs_plain_new(PyObject *cls) {
        return PyType_Check(cls) && ((PyTypeObject *)cls)->tp_new == PyBaseObject_Type.tp_new;
    }
    /* A class's type version tag, or 0 when it cannot tell whether the class changed
       (not a type; before 3.11 a change only clears Py_TPFLAGS_VALID_VERSION_TAG and
       leaves the old number, so the number counts only with the flag set). */
    static unsigned int httprs_type_tag(PyObject *cls) {
        if (!PyType_Check(cls)) return 0;
    #if PY_VERSION_HEX < 0x030B0000
        if (!PyType_HasFeature((PyTypeObject *)cls, Py_TPFLAGS_VALID_VERSION_TAG)) return 0;
    #endif
        return ((PyTypeObject *)cls)->tp_version_tag;
    }
    /* PEP 509's version of a dict's contents: globally unique, renewed by every change
       to the dict, so an unchanged (dict, version) pair means unchanged contents. 0 where
       it may not be read (deprecated from 3.12). */
    #define HTTPRS_DICT_VERSIONS (PY_VERSION_HEX < 0x030C0000)
    static unsigned long long httprs_dict_version(PyObject *d) {
    #if PY_VERSION_HEX < 0x030C0000
        return PyDict_CheckExact(d) ? (unsigned long long)((PyDictObject *)d)->ma_version_tag : 0;
    #else
        (void)d;
        return 0;
    #endif
    }
    #if PY_VERSION_HEX >= 0x030D0000
    /* Exported, but declared only in the internal headers from 3.13. C linkage: these
       modules compile as C++, and CPython exports the unmangled name. */
    #ifdef __cplusplus
    extern "C" {
    #endif
    PyAPI_FUNC(int) _PyObject_GetMethod(PyObject *obj, PyObject *name, PyObject **method);
    #ifdef __cplusplus
    }
    #endif
    #endif
    /* Whether `obj.name` finds `func` on the type of `obj`, not shadowed by an instance
       attribute: what `obj.name()` calls. CPython's own method lookup (the one
       `PyObject_VectorcallMethod` makes), which reads an instance's inline attribute
       values without making its __dict__. 0 when there is no such attribute (the
       caller's slow path finds what there is); -1 with an exception set on another
       error. */
    static int httprs_stock_method(PyObject *obj, PyObject *name, PyObject *func) {
        PyObject *method = NULL;
        int unbound = _PyObject_GetMethod(obj, name, &method);
        if (method == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
            PyErr_Clear();
            return 0;
        }
        int same = unbound && method == func;
        Py_DECREF(method);
        return same;
    }
    """
    object object_new "httprs_object_new"(object cls)
    bint stock_method "httprs_stock_method"(object obj, object name, object func) except -1
    unsigned long long dict_version "httprs_dict_version"(object d)
    # Whether dict_version reads versions at all (a compile-time constant; else 0).
    const bint dict_versions "HTTPRS_DICT_VERSIONS"
    unsigned int type_tag "httprs_type_tag"(object cls)
    bint plain_new "httprs_plain_new"(object cls)


cdef inline bint class_unchanged(object cls, unsigned int* remembered, tuple stock) except -1:
    """Whether `cls` still has each (name, value) pair of `stock` (the library's own
    methods), answered from the class's version tag while it is the one `remembered`
    from the last check that found them all (CPython gives a class a new tag on any
    change to it or a base: a patch, an assignment, a deletion). `remembered` is the
    caller's module-level memo."""
    cdef unsigned int tag = type_tag(cls)
    if tag != 0 and tag == remembered[0]:
        return True
    if tag == 0:  # a lookup through the class gives it a tag
        getattr(cls, "__init__", None)
        tag = type_tag(cls)
    # The tag is read before the class is looked at: a change after this read gives the
    # class a new tag, so a tag is never remembered for a state it did not see.
    for name, value in stock:
        if getattr(cls, name, None) is not value:
            return False
    remembered[0] = tag
    return True


cdef extern from "Python.h":
    object PyObject_GenericGetDict(object obj, void* context)


# One object handed out to many holders while nothing wrote to it: a memo is
# (object, its attribute dict's PEP 509 version when it was recorded), or None.
cdef inline object shared_or_none(tuple memo, object cls):
    """The memo's object while it is still of class `cls` (not given another __class__)
    and its attribute dict's version is the recorded one (any set, delete or dict change
    renews it); else None: the caller makes a new one and records it (share_memo)."""
    if memo is None:
        return None
    obj = memo[0]
    if (
        type(obj) is cls
        and dict_version(PyObject_GenericGetDict(obj, NULL)) == <unsigned long long>memo[1]
    ):
        return obj
    return None


cdef inline tuple share_memo(object obj, object cls):
    """The memo that hands `obj` out (shared_or_none), or None when it may not be shared:
    not of class `cls`, or its dict's version unreadable (3.12+). Anything lazily made
    into its dict must be made before this call."""
    if type(obj) is not cls:
        return None
    cdef unsigned long long version = dict_version(PyObject_GenericGetDict(obj, NULL))
    return None if version == 0 else (obj, version)


cdef inline object lazy_request_timeout(object request, object cls, unsigned int* tag, tuple stock):
    """The timeout snapshot of a Request a client built whose `extensions` dict is not made
    yet (httprs._models.Request: its `_ext_timeout`, shared and never written), for an
    exact `cls` (that Request) still holding the `stock` pairs (its own `extensions`
    among them; `tag` the caller's memo, as for class_unchanged); else None: read
    `request.extensions` then."""
    if type(request) is cls and class_unchanged(cls, tag, stock):
        return request._ext_timeout
    return None
