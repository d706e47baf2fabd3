# Guards on Python's sockets (pytest-socket, pytest-recording's block_network):
# while one is installed, a request's new connections are opened through
# `socket.socket` and its `connect` as httpcore opens them, so that the guard
# decides; the C++ connection takes the connected descriptor over
# (Engine::connect_resume). Included into _core.pyx.

import _socket

cdef object _c_socket = _socket.socket  # what every real socket.socket instance is
# Its own methods: pytest-socket, after each test, stores the inherited connect back
# on socket.socket (`socket.socket.connect = _true_connect`), which is no guard.
cdef object _c_connect = _c_socket.__dict__["connect"]
cdef object _c_connect_ex = _c_socket.__dict__["connect_ex"]
cdef object _genuine_create_connection = None


cdef bint _is_timeout(object error) except -1:
    """Whether a connect's error is its timeout: socket.timeout and asyncio's
    TimeoutError are TimeoutError itself only from 3.10 and 3.11."""
    if isinstance(error, (TimeoutError, _socket_module.timeout)):
        return True
    aio = sys.modules.get("asyncio")
    return aio is not None and isinstance(error, aio.TimeoutError)


# `socket.socket` as last found plain (the standard library's class, its connect and
# connect_ex its own), with the socket module dict's PEP 509 version and the class's
# version tag then (0: not known): while both are unchanged, so is the answer.
cdef object _plain_socket_class = None
cdef unsigned long long _socket_dict_plain = 0
cdef unsigned int _plain_socket_tag = 0


cdef bint _connect_guarded(bint is_async) except -1:
    """Whether something guards Python's socket connections: `socket.socket` replaced
    by a socket class of its own (pytest-socket's --disable-socket), or its `connect` /
    `connect_ex` replaced (pytest-socket's --allow-hosts, pytest-recording's
    block_network), or anything else in the class's place (a function, a `mock.patch`
    MagicMock, the fake socket class of mocket or httpretty), or
    `socket.create_connection` replaced. Connections then go through it, as httpx's do;
    one that gives no TCP socket fails the request (ConnectError), never reaching the
    network behind the replacement's back. Only a green-thread library's class (gevent,
    eventlet), which makes real sockets cooperatively, leaves connections to the core. A
    replaced `socket.create_connection` counts for sync requests only (httpcore's async
    backends never call it). Unguarded, this costs two compares."""
    global _plain_socket_class, _socket_dict_plain, _plain_socket_tag
    if _socket_module is None:
        _patched_getaddrinfo()  # (imports socket and keeps its dict)
    cdef unsigned long long version = _dict_version(_socket_dict)
    if (
        version != 0
        and version == _socket_dict_plain
        and _plain_socket_tag != 0
        and _type_tag(_plain_socket_class) == _plain_socket_tag
    ):
        return False
    cls = _socket_module.socket
    cdef unsigned int tag = _type_tag(cls) if cls is _plain_socket_class else 0
    if tag != 0 and tag == _plain_socket_tag:  # (the module changed elsewhere; or 3.12+)
        return _plain_class_guarded(version, is_async)
    if not isinstance(cls, type):
        return True  # a function in the class's place (a common recipe), a mock
    if not issubclass(cls, _c_socket):
        return not _green_socket_class(cls)
    # Read before the class is looked at (a change after it renews the tag); a lookup
    # through the class gives it one.
    tag = _type_tag(cls)
    if tag == 0:
        getattr(cls, "connect", None)
        tag = _type_tag(cls)
    attributes = cls.__dict__
    if (
        cls.__module__ != "socket"
        or cls.__name__ != "socket"
        or attributes.get("connect", _c_connect) is not _c_connect
        or attributes.get("connect_ex", _c_connect_ex) is not _c_connect_ex
    ):
        return True
    _plain_socket_class = cls
    _plain_socket_tag = tag
    return _plain_class_guarded(version, is_async)


cdef bint _plain_class_guarded(unsigned long long version, bint is_async) except -1:
    """With the standard socket class in place: guarded only by a replaced
    create_connection, and only for sync requests; unguarded for both, the module
    dict's version is remembered."""
    global _socket_dict_plain
    if _patched_create_connection() is not None:
        return not is_async
    _socket_dict_plain = version
    return False


cdef bint _green_socket_class(object cls) except -1:
    """Whether `cls` is a green-thread library's socket class (gevent's, eventlet's):
    real sockets, scheduled cooperatively, so the core's own connections serve."""
    package = (getattr(cls, "__module__", None) or "").partition(".")[0]
    return package == "gevent" or package == "eventlet"


cdef str _no_tcp_socket(object sock):
    """Why a connection a socket replacement made cannot carry the request."""
    kind = type(sock)
    return (
        f"the patched socket module gave a {kind.__module__}.{kind.__qualname__}, which "
        "is no TCP socket httprs can send through (a Python-level socket mock, such as "
        "mocket's or httpretty's, or a mock.patch of socket.socket): httprs's core needs a "
        "connected TCP socket; mock at the transport level instead (respx, MockTransport)"
    )


cdef bint _is_tcp(int fd) except -1:
    """Whether the descriptor a wrapper gave is a TCP socket (a mock's socketpair end,
    or a MagicMock's 1, stdout, is not)."""
    try:
        duplicate = os.dup(fd)
    except OSError:  # no open descriptor at all
        return False
    try:
        probe = _c_socket(fileno=duplicate)
    except OSError:
        os.close(duplicate)
        return False
    try:
        return (
            probe.family in (_socket.AF_INET, _socket.AF_INET6)
            and probe.type == _socket.SOCK_STREAM
        )
    finally:
        probe.close()


cdef object _patched_create_connection():
    """socket.create_connection when something replaced it, else None: httpcore's
    sync connect calls it, so a replacement decides there (and so in a guarded sync
    request here)."""
    global _genuine_create_connection
    current = _socket_module.create_connection
    if current is _genuine_create_connection:
        return None
    if getattr(current, "__globals__", None) is _socket_dict:  # (socket.py's own)
        _genuine_create_connection = current
        return None
    return current


cdef class _GuardedConnect:
    """One new connection of a guarded request, opened as socket.create_connection
    does: each address `socket.getaddrinfo` gives in turn, the transport's socket
    options and local address applied before `connect`, the connect timeout on each.
    The guard's own exceptions propagate as they do from httpx; OSErrors (refused,
    timed out, a name that does not resolve) go to the core as the connect's failure,
    so that `retries=` and the error's class are as for the core's own connects."""

    cdef str host
    cdef int port
    cdef object timeout  # seconds, or None
    cdef object options  # socket_options= as given, or None
    cdef object local  # local_address= as str, or None
    cdef object error  # the last OSError

    @staticmethod
    cdef _GuardedConnect of(_TransportCore core, Transfer* t):
        cdef _GuardedConnect self = _GuardedConnect.__new__(_GuardedConnect)
        host = (<bytes>t.spec.connect_host).decode("ascii")
        self.host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self.port = t.spec.connect_port
        cdef double limit = t.spec.connect_timeout
        self.timeout = limit if 0 <= limit < 1e9 else None  # (else none: timeouts.h)
        self.options = core.socket_options_arg
        self.local = None
        if core.local_address is not None:
            try:
                self.local = core.local_address.decode()
            except UnicodeDecodeError:
                self.local = core.local_address  # (socket.bind takes the bytes, as given)
        return self

    cdef object socket_for(self, tuple info, bint real_only):
        """A new socket for one getaddrinfo answer, options applied, bound; None (the
        error kept) on an OSError, or when `real_only` and the replaced class made no
        real socket (the async loops connect real sockets only)."""
        try:
            sock = _socket_module.socket(info[0], info[1], info[2])
        except OSError as err:
            self.error = err
            return None
        if real_only and not issubclass(type(sock), _c_socket):
            self.error = OSError(_no_tcp_socket(sock))
            close = getattr(sock, "close", None)
            if callable(close):
                close()
            return None
        return sock if self.prepared(sock, True) else None

    cdef bint prepared(self, object sock, bint bind) except -1:
        """Apply the socket options (and bind the local address): False, the socket
        closed and the error kept, on an OSError."""
        try:
            for option in self.options or ():
                sock.setsockopt(*option)
            if bind and self.local is not None:
                sock.bind((self.local, 0))
        except OSError as err:
            sock.close()
            self.error = err
            return False
        except BaseException:
            sock.close()
            raise
        return True

    cdef int taken(self, object sock) except -2:
        """The connected socket's descriptor, now the caller's: a socket's own, detached;
        another object's (a wrapper a guard returned) a duplicate, the object closed.
        -1 when it has no descriptor (the core checks it is a connected TCP socket)."""
        if issubclass(type(sock), _c_socket):  # (not isinstance: an autospec mock passes it)
            return sock.detach()
        fileno = getattr(sock, "fileno", None)
        try:
            fd = fileno() if callable(fileno) else None
            if type(fd) is int and fd >= 0 and _is_tcp(fd):
                return os.dup(fd)
            self.error = OSError(_no_tcp_socket(sock))
            return -1
        finally:
            close = getattr(sock, "close", None)
            if callable(close):
                close()

    def run(self):
        """Sync: connect, blocking; the descriptor, or -1 (self.error says why)."""
        create = _patched_create_connection()
        if create is not None:
            return self.run_through(create)
        for info in self.addresses() or ():
            sock = self.socket_for(info, False)
            if sock is None:
                continue
            try:
                sock.settimeout(self.timeout)
                sock.connect(info[4])
            except OSError as err:
                sock.close()
                self.error = err
                continue
            except BaseException:
                sock.close()
                raise
            return self.taken(sock)
        return -1

    def run_through(self, create):
        """Sync, with socket.create_connection replaced: connect through it, as
        httpcore does, then apply the socket options."""
        local = (self.local, 0) if self.local is not None else None
        try:
            sock = create((self.host, self.port), self.timeout, source_address=local)
        except OSError as err:
            self.error = err
            return -1
        return self.taken(sock) if self.prepared(sock, False) else -1

    async def arun(self):
        """Async: the same on asyncio (the loop's sock_connect) or trio (its socket),
        getaddrinfo in a worker thread (on asyncio not for an IP literal, as anyio);
        the event loop is never blocked."""
        trio = None
        failures = OSError
        if _current_library() == "trio":
            import trio
            infos = await trio.to_thread.run_sync(self.addresses)
        else:
            import asyncio

            loop = asyncio.get_running_loop()
            failures = (OSError, asyncio.TimeoutError)  # (before 3.11 not an OSError)
            # anyio.connect_tcp (httpcore on asyncio) asks getaddrinfo about names only.
            infos = _literal_addresses(self.host, self.port)
            if infos is None:
                infos = await loop.run_in_executor(None, self.addresses)
        for info in infos or ():
            sock = self.socket_for(info, True)
            if sock is None:
                continue
            try:
                sock.setblocking(False)
                if trio is not None:
                    await self.trio_connect(trio, sock, info[4])
                else:
                    await asyncio.wait_for(loop.sock_connect(sock, info[4]), self.timeout)
            except failures as err:
                sock.close()
                self.error = err
                continue
            except BaseException:
                sock.close()
                raise
            return self.taken(sock)
        return -1

    def addresses(self):
        """socket.getaddrinfo's answers (as it is now: a patch decides), or None (the
        error kept)."""
        try:
            return _socket_module.getaddrinfo(self.host, self.port, 0, _socket_module.SOCK_STREAM)
        except OSError as err:
            self.error = err
            return None

    async def trio_connect(self, trio, sock, address):
        stream = trio.socket.from_stdlib_socket(sock)
        if self.timeout is None:
            await stream.connect(address)
            return
        try:
            with trio.fail_after(self.timeout):
                await stream.connect(address)
        except trio.TooSlowError:
            raise TimeoutError("timed out") from None

    cdef int resume(self, Engine* eng, Transfer* t, int fd) except -1:
        """Hand the outcome to the connection waiting at its kConnect gate."""
        cdef Error err
        if fd < 0:
            error = self.error
            if error is None:
                error = OSError("getaddrinfo returns an empty list")
            kind = (
                ErrorKind.kConnectTimeout
                if _is_timeout(error)
                else ErrorKind.kConnectError
            )
            err.set(kind, (str(error) or "timed out").encode("utf-8", "replace"))
        with nogil:
            eng.connect_resume(t[0], fd, err)
        return 0


cdef int _connect_at_gate(_TransportCore core, Engine* eng, Transfer* t) except -1:
    """Sync: open the connection the transfer waits for at its kConnect gate."""
    cdef _GuardedConnect guarded = _GuardedConnect.of(core, t)
    guarded.resume(eng, t, guarded.run())
    return 0


async def _aconnect_at_gate(_TransportCore core, _Body stream):
    """Async: the same, awaiting the connect (the stream keeps the transfer alive)."""
    cdef _GuardedConnect guarded = _GuardedConnect.of(core, stream.t.get())
    fd = await guarded.arun()
    guarded.resume(stream.engine.eng, stream.t.get(), fd)
