"""nginx's TLS as a scanner sees it: sslyze against the local stack's HTTPS port.

Protocols, every cipher suite each protocol accepts, the curves, the certificate chain against the
stack's own CA, HSTS, renegotiation and compression, and sslyze's own verdict against Mozilla's
"intermediate" configuration, which nginx/templates/00-http.conf.template follows. The figures are
printed for the CI log.

sslyze runs as its own process (its CLI, JSON out): it brings a second OpenSSL (nassl), which
must not share a process with the `ssl` module that the other stack tests use from threads.
"""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import figures
from tests.stack.raw_http import port
from tests.stack.stacks import Stack

REJECTED = {
    "SSL 2.0": "ssl_2_0_cipher_suites",
    "SSL 3.0": "ssl_3_0_cipher_suites",
    "TLS 1.0": "tls_1_0_cipher_suites",
    "TLS 1.1": "tls_1_1_cipher_suites",
}
ACCEPTED = {"TLS 1.2": "tls_1_2_cipher_suites", "TLS 1.3": "tls_1_3_cipher_suites"}
AEAD = ("_GCM_", "_CHACHA20_POLY1305_", "_CCM")
HSTS_MIN_AGE = 365 * 24 * 3600
SCANS = ("--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", "--elliptic_curves")
SCANS += ("--certinfo", "--http_headers", "--reneg", "--compression")


@pytest.fixture(scope="module")
def sslyze(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    """One scan; its exit status and output (the Mozilla verdict) and its JSON results."""
    out = tmp_path_factory.mktemp("sslyze") / "scan.json"
    command = [sys.executable, "-m", "sslyze", f"--json_out={out}", "--mozilla_config=intermediate"]
    command += ["--sni", "localhost", f"--certinfo_ca_file={stack.ca_file}", *SCANS]
    # 127.0.0.1: Docker publishes on IPv4 loopback only; SNI "localhost", a name nginx serves.
    command.append(f"localhost:{port(stack.https)}{{127.0.0.1}}")
    started = time.monotonic()
    process = subprocess.run(command, capture_output=True, text=True, timeout=120)
    figures.record("sslyze", f"scan of {stack.https} took {time.monotonic() - started:.1f} s")
    assert out.exists(), process.stdout + process.stderr
    (server,) = json.loads(out.read_text())["server_scan_results"]
    assert server["scan_status"] == "COMPLETED", server["connectivity_error_trace"]
    failed = {
        name: attempt["error_reason"] for name, attempt in server["scan_result"].items() if attempt["status"] == "ERROR"
    }
    assert not failed, failed
    return process, server["scan_result"]


@pytest.fixture(scope="module")
def scan(sslyze: tuple[subprocess.CompletedProcess[str], dict]) -> dict:
    return sslyze[1]


def result(scan: dict, command: str) -> Any:
    return scan[command]["result"]


def test_mozilla_intermediate_compliance(sslyze: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    """sslyze's own verdict: protocols, suites, curves, certificate lifespan as Mozilla's
    intermediate configuration asks (exit status 0, or the reasons it prints)."""
    process, _ = sslyze
    verdict = process.stdout[process.stdout.find("COMPLIANCE") :]
    figures.record("sslyze", f"{' '.join(verdict.split()[-6:])}")
    assert process.returncode == 0, verdict


def test_old_protocols_are_refused(scan: dict) -> None:
    """SSL 2.0, SSL 3.0, TLS 1.0 and TLS 1.1: not one cipher suite accepted."""
    accepted = {name: result(scan, command)["accepted_cipher_suites"] for name, command in REJECTED.items()}
    assert accepted == {name: [] for name in REJECTED}


def test_tls_1_2_and_1_3_accept_only_aead_suites_with_forward_secrecy(scan: dict) -> None:
    """Both protocols are on; every suite they accept is AEAD with an ephemeral key exchange."""
    for name, command in ACCEPTED.items():
        accepted = result(scan, command)["accepted_cipher_suites"]
        names = [suite["cipher_suite"]["name"] for suite in accepted]
        figures.record("sslyze", f"{name}: {len(accepted)} suites accepted: {', '.join(names)}")
        assert accepted, f"{name} refused"
        for suite, suite_name in zip(accepted, names, strict=True):
            assert any(mode in suite_name for mode in AEAD), suite_name
            # TLS 1.3 always exchanges keys ephemerally; TLS 1.2 suites must say ECDHE/DHE.
            assert suite["ephemeral_key"] is not None, suite_name
            assert name == "TLS 1.3" or "_ECDHE_" in suite_name or "_DHE_" in suite_name


def test_only_the_intermediate_curves(scan: dict) -> None:
    curves = {curve["name"] for curve in result(scan, "elliptic_curves")["supported_curves"]}
    figures.record("sslyze", f"curves {sorted(curves)}")
    assert curves == {"X25519", "secp256r1", "secp384r1"}  # prime256v1 in OpenSSL's words


def test_certificate_chain_is_valid_against_the_stacks_ca(scan: dict, stack: Stack) -> None:
    """The chain nginx sends verifies against the stack's CA (a stranger's CA is refused in
    test_edge.py) for the name scanned, in the right order."""
    for deployment in result(scan, "certificate_info")["certificate_deployments"]:
        ours = [v for v in deployment["path_validation_results"] if Path(v["trust_store"]["path"]) == stack.ca_file]
        assert len(ours) == 1, [v["trust_store"]["name"] for v in deployment["path_validation_results"]]
        assert ours[0]["was_validation_successful"], ours[0]["validation_error"]
        assert deployment["received_chain_has_valid_order"]


def test_hsts_for_at_least_a_year(scan: dict) -> None:
    hsts = result(scan, "http_headers")["strict_transport_security_header"]
    assert hsts is not None, "no Strict-Transport-Security header"
    figures.record("sslyze", f"HSTS max-age={hsts['max_age']}")
    assert hsts["max_age"] is not None and hsts["max_age"] >= HSTS_MIN_AGE


def test_no_insecure_renegotiation_and_no_compression(scan: dict) -> None:
    renegotiation = result(scan, "session_renegotiation")
    assert renegotiation["supports_secure_renegotiation"]
    assert not renegotiation["is_vulnerable_to_client_renegotiation_dos"]
    assert not result(scan, "tls_compression")["supports_compression"]
