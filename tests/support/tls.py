"""A throw-away certificate authority and one broker certificate for 127.0.0.1, made with openssl.

The deploy templates speak TLS; the tests that run them need a CA the clients trust and a
certificate whose name matches the address they dial (the broker's name is always verified).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    cert_file: Path  # the brokers' certificate: subjectAltName IP:127.0.0.1, DNS:localhost
    key_file: Path


def make_certificates(directory: Path) -> Certificates:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("openssl not found: `apt-get install -y openssl`")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_file = directory / "ca.key", directory / "ca.pem"
    key_file, csr, cert_file = directory / "broker.key", directory / "broker.csr", directory / "broker.crt"
    san = directory / "san.ext"
    san.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]  # fast to make
    sign = ["-CA", ca_file, "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-extfile", san]
    for command in (
        ["req", "-x509", *ec, "-days", "2", "-keyout", ca_key, "-out", ca_file, "-subj", "/CN=test CA"],
        ["req", *ec, "-keyout", key_file, "-out", csr, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, *sign, "-out", cert_file],
    ):
        subprocess.run([openssl, *map(str, command)], check=True, capture_output=True, timeout=30)
    return Certificates(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
