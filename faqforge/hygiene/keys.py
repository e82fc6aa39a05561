"""Where an API key may go: each endpoint (the teacher, served evaluation, chat,
a forwarded generator, embeddings) reads its own variable, and no key crosses
the network in the clear."""

import ipaddress
import os
from urllib.parse import urlsplit

from faqforge.core.io import PipelineError


def api_key(key_env):
    """The key in the variable named `key_env`, or None when it is unset or empty."""
    return os.environ.get(key_env or "") or None


def check_key_transport(base_url, key, insecure_http, where, key_env, override):
    """Stop before connecting when `key` would go over plain http:// to a host other
    than this machine, unless `insecure_http` (the user's `override` said so).
    `where` names the setting that gave the URL, for the message."""
    parts = urlsplit(base_url or "")
    if not key or insecure_http or parts.scheme != "http" or is_loopback(parts.hostname or ""):
        return
    raise PipelineError(f"{where} {base_url} is plain http to another host, so the key in {key_env} would cross the "
                        f"network unencrypted; use https, or {override} for a network you trust.")


def is_loopback(host):
    """Whether `host` is this machine by its very spelling (a name could resolve anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
