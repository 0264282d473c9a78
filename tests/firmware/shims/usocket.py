"""MicroPython's usocket on CPython: stream read/write on a blocking socket."""

import socket as _socket

LAST_HOST = {"name": None}


def getaddrinfo(host, port, *args):
    LAST_HOST["name"] = host.decode() if isinstance(host, bytes) else host
    return _socket.getaddrinfo(LAST_HOST["name"], port, _socket.AF_INET, _socket.SOCK_STREAM)


class socket:
    def __init__(self, *args, sock=None):
        self._sock = sock or _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        self._sock.settimeout(30)

    def connect(self, address):
        self._sock.connect(address)

    def write(self, data, length=None):
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data if length is None else data[:length])
        self._sock.sendall(data)
        return len(data)

    def read(self, size):
        chunks = b""
        while len(chunks) < size:
            try:
                chunk = self._sock.recv(size - len(chunks))
            except BlockingIOError:
                return chunks or None
            except OSError:  # SSLWantReadError is an OSError
                if self._sock.gettimeout() == 0.0:
                    return chunks or None
                raise
            if not chunk:
                break
            chunks += chunk
        return chunks

    def setblocking(self, flag):
        self._sock.settimeout(30 if flag else 0.0)

    def close(self):
        self._sock.close()
