# Declarations from src/socket_stream.h: only the fault injection the torture
# tests use (tests/test_torture.py).


cdef extern from "socket_stream.h" namespace "httprs" nogil:
    cdef enum class FaultSite(int):
        kConnect
        kWrite
        kRead

    void fault_arm(FaultSite site, int k, int status)
    int fault_calls(FaultSite site)
