"""A stand-in for the load balancer in front of a broker cluster, on loopback.

Each new connection goes to the first upstream that accepts it, in order (HAProxy's `balance
first` with health checks, or a client trying a DNS name's addresses in turn); bytes are copied
both ways, TLS included, and when either side closes so does the other. A client that loses its
member therefore reconnects to the next live one without knowing the cluster.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Sequence

CHUNK = 64 * 1024


class FirstAlive:
    host = "127.0.0.1"

    def __init__(self, upstreams: Sequence[tuple[str, int]]) -> None:
        self.upstreams = list(upstreams)
        self._server = socket.create_server((self.host, 0))
        self.port = int(self._server.getsockname()[1])
        self.served: list[int] = []  # the upstream port of each connection, in order
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="first-alive", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            upstream = self._connect()
            if upstream is None:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._copy, args=(source, sink), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        for host, port in self.upstreams:
            try:
                upstream = socket.create_connection((host, port), timeout=1.0)
            except OSError:
                continue
            upstream.settimeout(None)
            self.served.append(port)
            return upstream
        return None

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):  # one side gone: the other hears it at once
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        self._server.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(5)
