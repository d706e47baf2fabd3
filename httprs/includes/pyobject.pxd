# Python object helpers shared by the Cython modules (no C++ header behind them).

cdef extern from *:
    """
    /* object.__new__(cls) without the Python-level call: object's own tp_new, which
       also sets up the instance's inline attribute values as the plain call does (an
       instance allocated without that keeps its attributes in a separate dict). For
       classes that define no __new__ of their own. */
    static PyObject *httprs_object_new(PyObject *cls) {
        PyObject *args = PyTuple_New(0);
        if (args == NULL) return NULL;
        PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)cls, args, NULL);
        Py_DECREF(args);
        return obj;
    }
    """
    object object_new "httprs_object_new"(object cls)
