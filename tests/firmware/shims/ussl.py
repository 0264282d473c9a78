"""MicroPython's ussl on CPython: wrap_socket with the device's key and certificate bytes.

Trust comes from the default store (`SSL_CERT_FILE` in the tests), as on a device whose
firmware carries IoT Hub's roots.
"""

import os
import ssl
import tempfile

import usocket


def _file(data):
    handle, path = tempfile.mkstemp(suffix=".pem")
    os.write(handle, data if isinstance(data, bytes) else data.encode())
    os.close(handle)
    return path


def wrap_socket(sock, key=None, cert=None, server_hostname=None, **_ignored):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_default_certs()
    if cert is not None:
        cert_path, key_path = _file(cert), _file(key)
        try:
            context.load_cert_chain(cert_path, key_path)
        finally:
            os.unlink(cert_path)
            os.unlink(key_path)
    hostname = server_hostname or usocket.LAST_HOST["name"]
    wrapped = context.wrap_socket(sock._sock, server_hostname=hostname)
    return usocket.socket(sock=wrapped)
