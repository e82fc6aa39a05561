"""Downloading a document so that a sources list cannot be turned against the
network it runs in (server-side request forgery): every host is resolved
first and each of its addresses checked, the connection goes to an address
that passed (so a second DNS answer cannot swap it), and every redirect is
checked again the same way. Refused: loopback, private, link-local (the cloud
metadata service at 169.254.169.254 and fd00:ec2::254 among them), shared
(100.64.0.0/10, Alibaba's metadata at 100.100.100.200), unique-local,
multicast, reserved and unspecified addresses; an allow-list of networks (with
an optional port) lets intranet sources through. A redirect from https to
http is refused; bodies over a size cap and content types faqforge cannot read
are too. Proxy variables are not used: the checked address is the one
connected to.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 5
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream"}


class FetchError(Exception):
    """A URL that could not be fetched: `status` is short ("404 Not Found", "timed out",
    "refused"), `retry` whether trying again may help."""

    def __init__(self, status, message, retry=False):
        super().__init__(message)
        self.status, self.retry = status, retry


@dataclass
class Page:
    url: str                # after redirects
    status: int             # 200, or 304 when the ETag sent still matches
    content_type: str = ""
    etag: str | None = None
    body: bytes = b""


def parse_allow(entries):
    """[(network, port or None)] from entries like 10.0.0.0/8, 192.168.1.20:8080, [fd00::1]:443."""
    allowed = []
    for entry in entries or []:
        text, port = str(entry).strip(), None
        if text.startswith("["):
            text, _, rest = text[1:].partition("]")
            port = rest[1:] or None
        elif text.count(":") == 1:
            text, port = text.split(":")
        try:
            allowed.append((ipaddress.ip_network(text, strict=False), int(port) if port else None))
        except ValueError:
            raise ValueError(f"allow entry {entry!r}: give a network or address with an optional port, e.g. "
                             "10.0.0.0/8 or 192.168.1.20:8080") from None
    return allowed


def why_refused(ip, port, allowed=()):
    """None when `ip`:`port` may be fetched from; else what kind of address it is."""
    ip = ipaddress.ip_address(ip)
    forms = [ip, ip.ipv4_mapped] if ip.version == 6 and ip.ipv4_mapped else [ip]
    if any(form in network and (p is None or p == port)
           for form in forms for network, p in allowed if network.version == form.version):
        return None
    ip = forms[-1]  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind, test in (("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified),
                       ("link-local (cloud metadata lives here)", ip.is_link_local),
                       ("multicast", ip.is_multicast),
                       ("shared address space (cloud metadata lives here)", ip in SHARED),
                       ("unique-local (cloud metadata lives here)", ip.version == 6 and ip in UNIQUE_LOCAL),
                       ("reserved", ip.is_reserved), ("private", ip.is_private),
                       ("not globally routable", not ip.is_global)):
        if test:
            return kind
    return None


SHARED = ipaddress.ip_network("100.64.0.0/10")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


def resolve(host, port, allowed=(), getaddrinfo=socket.getaddrinfo):
    """The addresses `host` resolves to, every one of them checked; a name with any refused
    address is refused whole (a DNS answer mixing public and private is a trick)."""
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise FetchError("unreachable", f"unreachable ({host}: {e.strerror})", retry=True) from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        kind = why_refused(address, port, allowed)
        if kind:
            raise FetchError("refused", f"refused: {host} resolves to {address}, a {kind} address; fetch it only "
                                        f"by listing it in `allow` (e.g. --allow {address}:{port})")
    return addresses


class _Pinned:
    """An http.client connection to an address already checked, not to a fresh lookup of the host."""

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self, http.client.HTTPSConnection):
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


class PinnedHTTP(_Pinned, http.client.HTTPConnection):
    pass


class PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    pass


def get(url, timeout=30.0, max_bytes=50 << 20, allowed=(), etag=None, readable=None, getaddrinfo=socket.getaddrinfo):
    """GET `url` safely (see the module's docstring), following up to MAX_REDIRECTS checked
    redirects. With `etag`, a 304 comes back as Page(status=304). `readable(content_type,
    url)` says whether a body of that type can be used; others are refused unread."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("refused", f"refused: {url} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve(parts.hostname, port, allowed, getaddrinfo)[0]
        kind = PinnedHTTPS if parts.scheme == "https" else PinnedHTTP
        options = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
        connection = kind(parts.hostname, port, timeout=timeout, **options)
        connection.address = address
        try:
            headers = {"User-Agent": "faqforge-fetch", "Accept": "*/*"}
            if etag:
                headers["If-None-Match"] = etag
            connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                               headers=headers)
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                target = urljoin(url, response.getheader("Location"))
                if parts.scheme == "https" and urlsplit(target).scheme == "http":
                    raise FetchError("refused", f"refused: {url} redirects from https to plain http ({target})")
                url = target
                continue
            if response.status == 304 and etag:
                return Page(url, 304, etag=etag)
            if response.status != 200:
                raise FetchError(f"{response.status} {response.reason}", f"{response.status} {response.reason}",
                                 retry=response.status in {408, 425, 429, 500, 502, 503, 504})
            content_type = response.headers.get_content_type()
            if readable and not readable(content_type, url):
                raise FetchError("refused", f"refused: {url} is {content_type}, not a document type faqforge reads")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError("too large", f"too large: {url} is {int(declared)} bytes, over the cap of "
                                              f"{max_bytes} (--max-bytes)")
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise FetchError("too large", f"too large: {url} is over the cap of {max_bytes} bytes (--max-bytes)")
            return Page(url, 200, content_type, response.getheader("ETag"), body)
        except TimeoutError:
            raise FetchError("timed out", "timed out", retry=True) from None
        except ssl.SSLError as e:
            raise FetchError("TLS failed", f"TLS failed ({e.reason or e})") from None
        except (OSError, http.client.HTTPException) as e:
            raise FetchError("unreachable", f"unreachable ({type(e).__name__}: {e})", retry=True) from None
        finally:
            connection.close()
    raise FetchError("too many redirects", f"more than {MAX_REDIRECTS} redirects from {url}")
