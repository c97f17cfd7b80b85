"""A Kafka-protocol broker that speaks TLS on loopback, for the TLS tests.

Tansu 0.6 (the embedded broker) lists ``--cert``/``--key`` options but its listener does not
complete a TLS handshake (checked: a TLS client's handshake times out), so TLS is terminated
in front of it: :class:`TlsBroker` starts Tansu on a plaintext loopback port, *advertising* the
proxy's port, and a small asyncio TLS proxy (stdlib ``ssl`` + ``asyncio`` streams; a dozen lines
that spare an stunnel install) forwards each TLS connection to Tansu. Clients bootstrap through
the proxy and the metadata sends them back to it, so every byte a client exchanges is TLS.

:func:`make_ca` issues a throwaway CA and a server certificate for ``localhost``/``127.0.0.1``
with ``cryptography``.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agentwatch.lab.broker import LOOPBACK, BrokerError, free_port, tansu_binary

#: The client key's password (the key is written encrypted, as mutual-TLS set-ups often have it).
CLIENT_KEY_PASSWORD = "client-key-password"


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path
    client_key_file: Path  # encrypted with CLIENT_KEY_PASSWORD


def make_ca(directory: Path, name: str = "agentwatch test CA") -> Pki:
    """A self-signed CA, a server certificate it signs (valid for localhost and 127.0.0.1) and a client
    certificate for mutual TLS, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agentwatch-monitor")]))
        .issuer_name(ca_name)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        directory / "ca.pem",
        directory / "broker.pem",
        directory / "broker.key",
        directory / "client.pem",
        directory / "client.key",
    )
    pki.client_cert_file.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    pki.client_key_file.write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(CLIENT_KEY_PASSWORD.encode()),
        )
    )
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki


class TlsBroker:
    """Tansu behind a TLS-terminating proxy; ``bootstrap_servers`` is the TLS port.

    ``mutual``: the proxy also requires a client certificate signed by the test CA."""

    def __init__(self, pki: Pki, mutual: bool = False) -> None:
        self.pki = pki
        self.mutual = mutual
        self.port = free_port()
        self.backend_port = free_port()
        self.connections = 0  # TLS connections accepted (handshake done)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="agentwatch-tansu-tls-", suffix=".log")

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def __enter__(self) -> TlsBroker:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.pki.cert_file, self.pki.key_file)
        if self.mutual:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.pki.ca_file)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, LOOPBACK, self.port, ssl=context), self._loop
        ).result(timeout=10)
        self._process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                f"tcp://{LOOPBACK}:{self.backend_port}",
                "--advertised-listener-url",
                f"tcp://{LOOPBACK}:{self.port}",  # clients come back through the TLS proxy
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"tansu exited: {Path(self._log.name).read_text()[-2000:]}")
            try:
                with socket.create_connection((LOOPBACK, self.backend_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise BrokerError("tansu did not listen within 20 s")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._log.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            reader, writer = await asyncio.open_connection(LOOPBACK, self.backend_port)
        except OSError:
            client_writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass  # the other side went away: closing both below is all there is to do
            finally:
                dst.close()

        await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))
