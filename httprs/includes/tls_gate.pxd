# Declarations from src/tls_gate.h: only the hooks the fork tests use
# (tests/test_fork.py); the gate itself is the core's.


cdef extern from "tls_gate.h" namespace "httprs" nogil:
    cdef cppclass TlsGate:
        @staticmethod
        void pause_next(int ms)
        @staticmethod
        int inside()
