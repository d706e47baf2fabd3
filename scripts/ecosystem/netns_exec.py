"""Bring up the loopback interface, then exec the given command.

Run as `unshare --net python netns_exec.py CMD ...`: the suite then gets a network
namespace of its own, with a working 127.0.0.1/::1 and nothing else. That keeps
fixed-port test servers (httpx's suite binds 127.0.0.1:8000) from colliding with other
processes on the machine, and guarantees the suites cannot reach the network.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import sys

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: netns_exec.py CMD [ARGS...]", file=sys.stderr)
        return 2
    if argv[0] == "--probe":
        # Can this namespace serve loopback? Bind and connect once.
        loopback_up()
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            with socket.create_connection(srv.getsockname(), timeout=5):
                pass
        print("ok")
        return 0
    loopback_up()
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
