"""The machine's address for media. Browsers gather no loopback ICE candidates and aioice skips
127.0.0.1, so WebRTC between a browser and the emulator needs an interface both can reach."""

from __future__ import annotations

import ipaddress

# aioice enumerates interfaces with ifaddr (installed with it); using it too means this finds an
# address ICE itself would consider.
import ifaddr


def ipv4_addresses() -> list[str]:
    """The machine's IPv4 addresses, in interface order."""
    return [
        ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if isinstance(ip.ip, str)
    ]


def first_non_loopback_ipv4() -> str | None:
    """The first IPv4 address that is neither loopback nor link-local, or None."""
    for address in ipv4_addresses():
        parsed = ipaddress.IPv4Address(address)
        if not (parsed.is_loopback or parsed.is_link_local or parsed.is_unspecified):
            return address
    return None
