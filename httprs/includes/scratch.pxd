# Declarations from src/scratch.h: only the allocation-failure hook the tests use
# (tests/test_torture.py).


cdef extern from "scratch.h" namespace "httprs" nogil:
    int scratch_fail_next(int n)
