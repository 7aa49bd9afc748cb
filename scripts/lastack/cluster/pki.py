"""Per-run certificates (openssl CLI), kubeconfigs and the TLS clients that probe servers."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from lastack.cluster.operators import OPERATORS
from lastack.cluster.state import ClusterError


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _ec_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(path), cwd=path.parent)


def _signed_cert(pki: Path, name: str, subject: str, usage: str, sans: str = "") -> None:
    """A P-256 key and a certificate signed by the run's CA (valid 2 days: runs are short)."""
    _ec_key(pki / f"{name}.key")
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr",
             cwd=pki)
    ext = ["basicConstraints=critical,CA:FALSE",
           "keyUsage=critical,digitalSignature,keyEncipherment",
           f"extendedKeyUsage={usage}"]
    if sans:
        ext.append(f"subjectAltName={sans}")
    (pki / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
             "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki)


LOOPBACK_SANS = "IP:127.0.0.1,DNS:localhost"
APISERVER_SANS = (LOOPBACK_SANS + ",IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,"
                  "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")
# name -> (subject, extendedKeyUsage, SANs). O=system:masters only for admin and kwok:
# kwok writes every fake kubelet's Node and Pod status, which no narrower role allows.
CERTS: dict[str, tuple[str, str, str]] = {
    "etcd-server": ("/CN=etcd", "serverAuth,clientAuth", LOOPBACK_SANS),
    "apiserver-etcd-client": ("/CN=kube-apiserver-etcd-client", "clientAuth", ""),
    "apiserver": ("/CN=kube-apiserver", "serverAuth", APISERVER_SANS),
    "admin": ("/O=system:masters/CN=la-stack-admin", "clientAuth", ""),
    "controller-manager": ("/CN=system:kube-controller-manager", "clientAuth", ""),
    "scheduler": ("/CN=system:kube-scheduler", "clientAuth", ""),
    "kwok": ("/O=system:masters/CN=kwok", "clientAuth", ""),
    **{op.name: (f"/CN={op.user}", "clientAuth", "") for op in OPERATORS},
    **{f"{op.name}-serving": (f"/CN={op.name}", "serverAuth", LOOPBACK_SANS)
       for op in OPERATORS if op.serving_files},
}


def generate_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    _ec_key(pki / "ca.key")
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=la-stack-local-ca",
             "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt", cwd=pki)
    for name, (subject, usage, sans) in CERTS.items():
        _signed_cert(pki, name, subject, usage, sans)
    # ServiceAccount token signing key pair (ES256 tokens).
    _ec_key(pki / "sa.key")
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "la-stack-local",
        "clusters": [{"name": "la-stack-local", "cluster": {
            "server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(f"{user}.crt"),
            "client-key-data": b64(f"{user}.key")}}],
        "contexts": [{"name": "la-stack-local", "context": {
            "cluster": "la-stack-local", "user": user}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def https_ok(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def client_context(pki: Path, cert: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    return context


def self_signed_context() -> ssl.SSLContext:
    # Controller-manager and scheduler serve /healthz with a certificate they make up at
    # start; the probe only asks "are you up" on loopback, so it does not verify it.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
