"""HTTPS through a proxy: ``HTTPS_PROXY`` / ``NO_PROXY`` as curl and requests read them.

Only the settings module reads the environment; it hands the two values here. An https origin
not excluded by NO_PROXY is reached through an HTTP ``CONNECT`` tunnel opened on a plain socket;
TLS (verified against the origin's host name, never the proxy's) then runs inside the tunnel.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

#: the proxy's answer to CONNECT is a status line and a few headers
_MAX_ANSWER = 16 * 1024


class ProxyError(ConnectionError):
    """The proxy refused the tunnel, or did not answer like an HTTP proxy."""


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str = ""  # the Proxy-Authorization value for user:password@ in the URL
    no_proxy: str = ""

    @classmethod
    def parse(cls, url: str, no_proxy: str = "") -> Proxy | None:
        """The proxy of ``HTTPS_PROXY`` (``http://[user:pass@]host[:port]``), or None when
        empty; ValueError for anything else (checked when the configuration loads)."""
        if not url.strip():
            return None
        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise ValueError(f"HTTPS_PROXY {url!r}: {exc}") from None
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"HTTPS_PROXY {url!r}: only an http://host:port proxy is supported")
        authorization = ""
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        return cls(parts.hostname, port, authorization, no_proxy)

    def applies_to(self, host: str, port: int) -> bool:
        """False when NO_PROXY names the host (or a domain of it, or ``*``)."""
        host = host.lower().rstrip(".")
        for entry in self.no_proxy.replace(" ", ",").split(","):
            entry = entry.strip().lower()
            if not entry:
                continue
            if entry == "*":
                return False
            name, entry_port = entry, ""
            if entry.count(":") == 1:  # host:port (an IPv6 address has more colons)
                name, _, entry_port = entry.partition(":")
            if entry_port and entry_port != str(port):
                continue
            name = name.lstrip(".").rstrip(".")
            if host == name or host.endswith("." + name):
                return False
        return True

    async def tunnel(self, host: str, port: int) -> socket.socket:
        """A connected socket whose bytes reach ``host:port`` through the proxy."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
            target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
            if self.authorization:
                lines.append(f"Proxy-Authorization: {self.authorization}")
            await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise ProxyError(f"proxy {self.host}:{self.port} hung up on CONNECT {target}")
                answer += chunk
                if len(answer) > _MAX_ANSWER:
                    raise ProxyError(f"proxy {self.host}:{self.port}: answer head too long")
            head, _, rest = answer.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].decode("latin-1")
            fields = status.split(" ", 2)
            if len(fields) < 2 or not fields[0].startswith("HTTP/") or fields[1] != "200":
                raise ProxyError(f"proxy {self.host}:{self.port} refused CONNECT: {status!r}")
            if rest:
                raise ProxyError(f"proxy {self.host}:{self.port} sent bytes nobody asked for")
        except BaseException:
            sock.close()
            raise
        return sock
