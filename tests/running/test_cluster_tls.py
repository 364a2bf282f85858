"""digitrec run --cluster tls://: a scheduler and a worker that speak TLS only, with certificates made here; a client
whose certificate another authority signed is refused, and nothing runs."""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path

import pytest
from fake_notebooks import write_succeeding

from digitrec_utils import config
from digitrec_utils.cli import EXIT_OK, EXIT_REJECTED, main
from digitrec_utils.exceptions import ClusterError, ParameterError
from digitrec_utils.running import cluster

x509 = pytest.importorskip("cryptography.x509", reason="making certificates needs cryptography (the dev extra)")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _write_authority(folder: Path, name: str):
    """A certificate authority: its key and self-signed certificate, the certificate written to ``<name>-ca.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    (folder / f"{name}-ca.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key, certificate


def _write_node(folder: Path, name: str, authority) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by ``authority``; return its and its key's paths."""
    authority_key, authority_certificate = authority
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(authority_certificate.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(authority_key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A local scheduler and one worker process that accept TLS only, and the certificates of a client."""
    from distributed import LocalCluster, Security

    folder = tmp_path_factory.mktemp("certificates")
    authority = _write_authority(folder, "office")
    scheduler_cert, scheduler_key = _write_node(folder, "scheduler", authority)
    worker_cert, worker_key = _write_node(folder, "worker", authority)
    client_cert, client_key = _write_node(folder, "client", authority)
    stranger_cert, stranger_key = _write_node(folder, "stranger", _write_authority(folder, "elsewhere"))
    security = Security(require_encryption=True, tls_ca_file=str(folder / "office-ca.pem"),
                        tls_scheduler_cert=scheduler_cert, tls_scheduler_key=scheduler_key,
                        tls_worker_cert=worker_cert, tls_worker_key=worker_key,
                        tls_client_cert=client_cert, tls_client_key=client_key)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tls://", security=security,
                      dashboard_address=None, host="127.0.0.1") as local:
        yield {"address": local.scheduler_address, "ca": str(folder / "office-ca.pem"),
               "client": (client_cert, client_key), "stranger": (stranger_cert, stranger_key),
               "stranger_ca": str(folder / "elsewhere-ca.pem")}


def test_a_notebook_runs_on_a_tls_cluster_with_the_clients_certificate(tls_cluster, tmp_path, monkeypatch):
    assert tls_cluster["address"].startswith("tls://")
    write_succeeding(tmp_path / "notebooks", "01_eda")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    profile = tmp_path / "empty.yaml"
    profile.write_text("{}\n")
    cert, key = tls_cluster["client"]
    status = main(["run", str(profile), "--cluster", tls_cluster["address"], "--tls-ca-file", tls_cluster["ca"],
                   "--tls-cert", cert, "--tls-key", key, "--out", str(tmp_path / "out"), "--name", "secured",
                   "--quiet"])
    assert status == EXIT_OK
    manifest = json.loads((tmp_path / "out" / "secured" / "run.json").read_text())
    assert manifest["notebooks"][0]["status"] == "ok" and manifest["notebooks"][0]["worker"]


def test_a_client_whose_certificate_another_authority_signed_is_refused(tls_cluster, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_SECONDS", 3)
    cert, key = tls_cluster["stranger"]
    for authority in (tls_cluster["stranger_ca"], tls_cluster["ca"]):  # Trusting the scheduler or not.
        executor = cluster.ClusterExecutor(tls_cluster["address"], show_code=False, timeout=60, progress=False,
                                           tls={"ca_file": authority, "cert": cert, "key": key})
        with pytest.raises(ClusterError, match="no TLS connection with a Dask scheduler there.*refused this client"):
            executor.__enter__()
    # Nor does a client that speaks no TLS get in.
    plain = cluster.ClusterExecutor(tls_cluster["address"].replace("tls://", "tcp://"), show_code=False, timeout=60,
                                    progress=False)
    with pytest.raises(ClusterError, match="no Dask scheduler could be reached there"):
        plain.__enter__()


def test_certificates_are_checked_before_anything_starts(tmp_path, capsys):
    with pytest.raises(ParameterError, match="--tls-ca-file, --tls-cert, --tls-key"):
        cluster.build_security("tls://10.0.0.5:8786")
    with pytest.raises(ParameterError, match="no such file: --tls-ca-file"):
        cluster.build_security("tls://10.0.0.5:8786", ca_file=str(tmp_path / "none.pem"), cert=__file__,
                               key=__file__)
    assert cluster.build_security("tcp://10.0.0.5:8786") is None
    status = main(["run", "--cluster", "tcp://10.0.0.5:8786", "--tls-cert", __file__, "--out", str(tmp_path)])
    assert status == EXIT_REJECTED and "certificates are for a tls:// scheduler" in capsys.readouterr().err
    status = main(["run", "--tls-cert", __file__, "--out", str(tmp_path)])
    assert status == EXIT_REJECTED and "certificates are for a tls:// scheduler" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
