# Declarations from src/adopted_socket.h: a connected socket handed to the engine.

cdef extern from "adopted_socket.h" namespace "httprs" nogil:
    cdef cppclass AdoptedSocket:
        void reset(int fd)
        int release()
        int get()
