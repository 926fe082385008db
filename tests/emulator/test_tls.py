"""The emulator's self-signed WSS certificate: contents, reuse, renewal, and a real handshake."""

import datetime
import ipaddress
import socket
import ssl
import stat
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from dialtone.emulator import tls

LAN = "192.0.2.10"
NAMES = ["voice-js.emulator.twilio.com", "Phone.Local", "10.1.2.3", "[fd00::7]"]


@pytest.fixture
def fixed_lan(monkeypatch):
    """A stable LAN address, so reuse does not depend on this machine's network."""
    monkeypatch.setattr(tls, "local_addresses", lambda: [LAN])


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return dns, ips


def test_certificate_contents(tmp_path, fixed_lan):
    cert_path, key_path = tls.ensure_certificate(tmp_path, NAMES)
    assert (cert_path.name, key_path.name) == ("emulator-cert.pem", "emulator-key.pem")
    assert cert_path.parent == key_path.parent == tmp_path
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    cert = load(cert_path)
    dns, ips = sans(cert)
    # IP addresses are IP SANs (browsers ignore IPs written as DNS names), names are lower-cased.
    assert dns == {"localhost", "voice-js.emulator.twilio.com", "phone.local"}
    assert ips == {"127.0.0.1", "::1", LAN, "10.1.2.3", "fd00::7"}

    assert cert.issuer == cert.subject
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=364) < lifetime < datetime.timedelta(days=366)
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_real_local_addresses_are_covered(tmp_path):
    cert_path, _ = tls.ensure_certificate(tmp_path, [])
    _, ips = sans(load(cert_path))
    assert set(tls.local_addresses()) <= ips


def test_reused_while_valid_and_covering(tmp_path, fixed_lan):
    cert_path, key_path = tls.ensure_certificate(tmp_path, NAMES)
    before = cert_path.read_bytes(), key_path.read_bytes()
    assert tls.ensure_certificate(tmp_path, NAMES) == (cert_path, key_path)
    assert (cert_path.read_bytes(), key_path.read_bytes()) == before
    # A subset of the names, in another spelling, is covered too.
    tls.ensure_certificate(tmp_path, ["PHONE.local.", "10.1.2.3"])
    assert (cert_path.read_bytes(), key_path.read_bytes()) == before


def test_regenerated_for_a_new_name(tmp_path, fixed_lan):
    cert_path, key_path = tls.ensure_certificate(tmp_path, NAMES)
    before = cert_path.read_bytes(), key_path.read_bytes()
    tls.ensure_certificate(tmp_path, [*NAMES, "other.test"])
    assert cert_path.read_bytes() != before[0]
    assert key_path.read_bytes() != before[1]
    assert "other.test" in sans(load(cert_path))[0]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_regenerated_when_the_lan_address_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(tls, "local_addresses", lambda: [LAN])
    cert_path, _ = tls.ensure_certificate(tmp_path, [])
    before = cert_path.read_bytes()
    monkeypatch.setattr(tls, "local_addresses", lambda: ["198.51.100.4"])
    tls.ensure_certificate(tmp_path, [])
    assert cert_path.read_bytes() != before
    assert "198.51.100.4" in sans(load(cert_path))[1]


def test_kept_with_more_than_thirty_days_left(tmp_path, fixed_lan):
    cert_path, _ = tls.ensure_certificate(tmp_path, NAMES, validity=datetime.timedelta(days=31))
    kept = cert_path.read_bytes()
    tls.ensure_certificate(tmp_path, NAMES)
    assert cert_path.read_bytes() == kept


def test_renewed_with_thirty_days_or_less_left(tmp_path, fixed_lan):
    cert_path, _ = tls.ensure_certificate(tmp_path, NAMES, validity=datetime.timedelta(days=29))
    short = cert_path.read_bytes()
    tls.ensure_certificate(tmp_path, NAMES)
    assert cert_path.read_bytes() != short
    left = load(cert_path).not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert left > datetime.timedelta(days=360)


@pytest.mark.parametrize("damage", ["cert-garbage", "key-garbage", "key-missing", "key-swapped"])
def test_regenerated_when_unusable(tmp_path, fixed_lan, damage):
    cert_path, key_path = tls.ensure_certificate(tmp_path, NAMES)
    before = cert_path.read_bytes()
    if damage == "cert-garbage":
        cert_path.write_text("not a certificate")
    elif damage == "key-garbage":
        key_path.write_text("not a key")
    elif damage == "key-missing":
        key_path.unlink()
    else:
        other = tmp_path / "other"
        _, other_key = tls.ensure_certificate(other, NAMES)
        key_path.write_bytes(other_key.read_bytes())
    tls.ensure_certificate(tmp_path, NAMES)
    assert cert_path.read_bytes() != before
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)  # the pair matches again


def handshake(cert_path, key_path, server_hostname: str) -> str:
    """TLS version agreed between a server with the pair and a client trusting only the cert."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    assert client_context.verify_mode == ssl.CERT_REQUIRED and client_context.check_hostname

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            connection, _ = listener.accept()
            with server_context.wrap_socket(connection, server_side=True) as server:
                server.sendall(server.recv(5))
        except (OSError, ssl.SSLError) as error:
            errors.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname=server_hostname) as client,
        ):
            client.sendall(b"hello")
            assert client.recv(5) == b"hello"
            return str(client.version())
    finally:
        thread.join(10)
        listener.close()


def test_tls_handshake_trusting_the_certificate(tmp_path, fixed_lan):
    cert_path, key_path = tls.ensure_certificate(tmp_path, NAMES)
    assert handshake(cert_path, key_path, "localhost").startswith("TLS")
    assert handshake(cert_path, key_path, "voice-js.emulator.twilio.com").startswith("TLS")
    assert handshake(cert_path, key_path, "127.0.0.1").startswith("TLS")


def test_tls_handshake_rejects_an_uncovered_name(tmp_path, fixed_lan):
    cert_path, key_path = tls.ensure_certificate(tmp_path, NAMES)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(cert_path, key_path, "elsewhere.test")


def test_trust_instructions(tmp_path, fixed_lan):
    cert_path, _ = tls.ensure_certificate(tmp_path, [])
    text = tls.trust_instructions(cert_path, "https://localhost:8443")
    digest = load(cert_path).fingerprint(hashes.SHA256()).hex(":").upper()
    assert digest in text
    assert str(cert_path) in text
    assert 'certutil -d sql:$HOME/.pki/nssdb -A -t "P,," -n dialtone-emulator' in text
    assert "update-ca-certificates" in text
    assert "security add-trusted-cert" in text
    assert "https://localhost:8443" in text


# --- Data directory and addresses ------------------------------------------------------------


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DIALTONE_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert tls.data_dir() == tmp_path / "home" / ".local" / "share" / "dialtone"

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert tls.data_dir() == tmp_path / "xdg" / "dialtone"

    monkeypatch.setenv("DIALTONE_DATA_DIR", str(tmp_path / "explicit"))
    path = tls.data_dir()
    assert path == tmp_path / "explicit"
    for created in (path, tmp_path / "xdg" / "dialtone"):
        assert created.is_dir()
        assert stat.S_IMODE(created.stat().st_mode) == 0o700


def test_data_dir_leaves_an_existing_directory_alone(tmp_path, monkeypatch):
    existing = tmp_path / "mine"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    monkeypatch.setenv("DIALTONE_DATA_DIR", str(existing))
    assert tls.data_dir() == existing
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755


def test_local_addresses_are_non_loopback_ipv4():
    addresses = tls.local_addresses()
    assert len(addresses) == len(set(addresses))
    for address in addresses:
        parsed = ipaddress.ip_address(address)
        assert parsed.version == 4 and not parsed.is_loopback
    assert tls.first_non_loopback_address() == (addresses[0] if addresses else None)


def test_local_addresses_order_and_filtering(monkeypatch):
    monkeypatch.setattr(tls, "_default_route_address", lambda: "192.168.1.5")
    monkeypatch.setattr(
        tls,
        "_hostname_addresses",
        lambda: ["127.0.1.1", "10.0.0.2", "192.168.1.5", "169.254.3.3", "0.0.0.0", "10.0.0.2"],
    )
    assert tls.local_addresses() == ["192.168.1.5", "10.0.0.2"]
    assert tls.first_non_loopback_address() == "192.168.1.5"

    monkeypatch.setattr(tls, "_default_route_address", lambda: None)
    monkeypatch.setattr(tls, "_hostname_addresses", lambda: ["127.0.0.1"])
    assert tls.local_addresses() == []
    assert tls.first_non_loopback_address() is None
