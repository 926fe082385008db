"""A local certificate for the emulator's WSS signaling endpoint.

The Voice JS SDK fixes the signaling scheme to `wss://` (voice-sdk-signaling.md §2), so the
emulator needs a certificate the browser trusts. A CA-less self-signed leaf is the smallest thing
that works: the user trusts that one certificate (NSS "P,," = trusted peer, or a click-through),
and no CA key exists that could sign certificates for other sites. The certificate is kept in the
data directory and reused, so trust given once survives restarts; it is replaced only when it no
longer covers the names in use or is about to expire.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shlex
import socket
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "emulator-cert.pem"
KEY_FILE = "emulator-key.pem"
VALIDITY = datetime.timedelta(days=365)  # under every browser's limit for leaf certificates
RENEW_BEFORE = datetime.timedelta(days=30)
BACKDATE = datetime.timedelta(minutes=5)  # tolerate a client clock slightly behind ours
ALWAYS = ("localhost", "127.0.0.1", "::1")
# TEST-NET-1 (RFC 5737): never routed, so "connecting" a UDP socket to it only asks the kernel
# which source address the default route would use. UDP connect sends no packet.
_PROBE = ("192.0.2.1", 9)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Name = str | IPAddress


def data_dir() -> Path:
    """Where dialtone keeps local state: `$DIALTONE_DATA_DIR`, else the XDG data directory.

    Created with mode 0700 because it holds private keys; an existing directory is left as the
    user made it.
    """
    explicit = os.environ.get("DIALTONE_DATA_DIR")
    if explicit:
        path = Path(explicit).expanduser()
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
        path = base / "dialtone"
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    else:
        path.chmod(0o700)  # mkdir's mode is filtered through the umask
    return path


def _default_route_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_PROBE)
            return str(probe.getsockname()[0])
    except OSError:  # no route at all (offline machine, sandbox)
        return None


def _hostname_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, the default-route one first.

    These go into the certificate so a phone or a second computer on the LAN can reach the
    emulator by IP. Uses only the socket module and sends nothing on the network.
    """
    found: list[str] = []
    for candidate in [_default_route_address(), *_hostname_addresses()]:
        if candidate is None:
            continue
        try:
            address = ipaddress.IPv4Address(candidate)
        except ValueError:
            continue
        if address.is_loopback or address.is_unspecified or address.is_link_local:
            continue
        if str(address) not in found:
            found.append(str(address))
    return found


def first_non_loopback_address() -> str | None:
    """The address other machines most likely reach this one at, if it has any."""
    addresses = local_addresses()
    return addresses[0] if addresses else None


def _parse_name(raw: str) -> Name:
    """An IP address when it is one (`[::1]` included), else a lower-case DNS name."""
    text = raw.strip()
    try:
        return ipaddress.ip_address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        pass
    if not text:
        raise ValueError("empty certificate name")
    name = text.rstrip(".").lower()
    if not name.isascii():
        name = name.encode("idna").decode("ascii")  # SANs carry A-labels only
    return name


def _requested_names(names: Iterable[str]) -> list[Name]:
    wanted: list[Name] = []
    for raw in [*ALWAYS, *local_addresses(), *names]:
        name = _parse_name(raw)
        if name not in wanted:
            wanted.append(name)
    return wanted


def _san_names(cert: x509.Certificate) -> set[Name]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    dns = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    return dns | set(san.get_values_for_type(x509.IPAddress))


def _reusable(cert_path: Path, key_path: Path, wanted: Sequence[Name]) -> bool:
    """The stored pair parses, matches, covers every wanted name and is not about to expire."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    if key.public_key() != cert.public_key():
        return False
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_before_utc > now or cert.not_valid_after_utc - now <= RENEW_BEFORE:
        return False
    return set(wanted) <= _san_names(cert)


def write_private(path: Path, data: bytes, mode: int) -> None:
    """Write atomically via a file mkstemp creates as 0600: a key is never readable by others."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        temporary.chmod(mode)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _generate(
    cert_path: Path, key_path: Path, wanted: Sequence[Name], validity: datetime.timedelta
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dialtone"),
            x509.NameAttribute(NameOID.COMMON_NAME, "dialtone emulator"),
        ]
    )
    sans: list[x509.GeneralName] = [
        x509.DNSName(name) if isinstance(name, str) else x509.IPAddress(name) for name in wanted
    ]
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Key first: a reader that sees the new certificate also finds its key.
    write_private(key_path, key_pem, 0o600)
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def ensure_certificate(
    directory: Path, names: Sequence[str], *, validity: datetime.timedelta = VALIDITY
) -> tuple[Path, Path]:
    """(certificate, key) paths for a self-signed server certificate covering `names`.

    Always covers localhost, 127.0.0.1, ::1 and this machine's LAN addresses as well. An
    existing pair is reused while it covers all of those and has more than 30 days left, so a
    browser's trust in it persists; otherwise a new key and certificate replace it (and the user
    has to trust the new one). `validity` exists for tests of renewal.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / CERT_FILE
    key_path = directory / KEY_FILE
    wanted = _requested_names(names)
    if not _reusable(cert_path, key_path, wanted):
        _generate(cert_path, key_path, wanted, validity)
    return cert_path, key_path


def fingerprint(cert: Path) -> str:
    """SHA-256 fingerprint as browsers show it: colon-separated upper-case hex."""
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    return ":".join(f"{byte:02X}" for byte in loaded.fingerprint(hashes.SHA256()))


def trust_instructions(cert: Path, url: str = "https://HOST:PORT") -> str:
    """How a person makes their browser trust `cert`, for the emulator to print at start."""
    path = shlex.quote(str(cert))
    return f"""\
The emulator's WSS endpoint uses a self-signed certificate:
  {cert}
  SHA-256 {fingerprint(cert)}
Trust it in one of these ways, then restart the browser:
  - Quickest: open {url} once in the browser and accept the warning.
  - Chromium/Chrome on Linux (NSS):
      certutil -d sql:$HOME/.pki/nssdb -A -t "P,," -n dialtone-emulator -i {path}
  - Debian/Ubuntu system store:
      sudo cp {path} /usr/local/share/ca-certificates/dialtone-emulator.crt
      sudo update-ca-certificates
  - macOS:
      sudo security add-trusted-cert -d -r trustRoot \\
        -k /Library/Keychains/System.keychain {path}
The certificate is reused until it nears expiry or the names it must cover change."""
