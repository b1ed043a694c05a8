"""C2PA content credentials: a signed manifest saying that a file is synthetic media made by masquerade.

The manifest holds one `c2pa.created` action with the IPTC digital source type
`compositeWithTrainedAlgorithmicMedia`, masquerade as its software agent and the model id, and a hash that binds
it to the file's bytes (C2PA's data hash for images, its BMFF hash for MP4/MOV). It is the industry's
machine-readable label (EU AI Act, Art. 50); a re-encode strips it, which is why the watermark is also there.

Signing uses a key and certificate made locally on first use (a local CA and a signing certificate, ES256, kept
in the user's config folder, never fetched), or the user's own. A local key proves only that the file has not
changed since this machine signed it: verify says so and reports the signer as not on a trust list.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from masquerade import __version__
from masquerade.core.atomic import make_folder, publish, temp_beside
from masquerade.core.errors import InputError, MasqueradeError

SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
MIME = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
SIGNER_FILE = "signer.pem"  # the private key, then the certificate chain (signer, CA), in one file


@dataclass(frozen=True)
class Credentials:
    chain: bytes  # PEM: the signing certificate, then its issuers
    key: bytes  # PEM: the private key


@dataclass
class ManifestReport:
    """What `verify` says about a file's C2PA manifest."""

    present: bool
    valid: bool = False  # signature and hash binding check out
    binding_ok: bool = False  # the file's bytes are those that were signed
    trusted: bool = False  # the signer chains to a C2PA trust anchor (a local key never does)
    signer: str = ""
    issuer: str = ""
    source_type: str = ""
    actions: list[str] = field(default_factory=list)
    model_id: str | None = None
    failures: list[str] = field(default_factory=list)
    error: str = ""

    def summary(self) -> str:
        if not self.present:
            return f"no C2PA manifest{f' ({self.error})' if self.error else ''}"
        failed = ", ".join(self.failures)
        if not self.binding_ok:
            return (
                f"C2PA manifest present, but its hash binding is broken: the content changed after signing ({failed})"
            )
        state = "valid" if self.valid else f"invalid ({failed})"
        trust = "on a trust list" if self.trusted else "not on a trust list (a local key)"
        acts = ", ".join(self.actions)
        return f"C2PA manifest {state}, signed by {self.signer} ({self.issuer}), {trust}; {acts}: {self.source_type}"


def supports(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in MIME


def config_dir() -> Path:
    """masquerade's folder in the user's config folder ($XDG_CONFIG_HOME or ~/.config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "masquerade"


def _make_local_pem() -> bytes:
    """A new local CA and an ES256 signing certificate issued by it (C2PA refuses self-signed signers)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "masquerade")]
        )

    def cert(subject, issuer, public, signing_key, ca: bool) -> x509.Certificate:
        usage = dict.fromkeys(
            ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only"), False
        )
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, decipher_only=False, **usage),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
            )
        return b.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = name("masquerade local CA")
    ca = cert(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    leaf = cert(name(f"masquerade on {os.uname().nodename}"), ca_name, key.public_key(), ca_key, ca=False)
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem + leaf.public_bytes(pem) + ca.public_bytes(pem)


def _split_pem(data: bytes) -> Credentials:
    blocks = [b"-----BEGIN" + b for b in data.split(b"-----BEGIN")[1:]]
    key = b"".join(b for b in blocks if b"PRIVATE KEY-----" in b.split(b"\n", 1)[0])
    chain = b"".join(b for b in blocks if b.startswith(b"-----BEGIN CERTIFICATE-----"))
    return Credentials(chain, key)


def local_credentials(folder: Path | None = None) -> Credentials:
    """The local signing key and certificates, made on first use (one file, private to the user, written
    atomically so that two first uses at once cannot leave a key beside another key's certificate)."""
    path = (folder or config_dir() / "c2pa") / SIGNER_FILE
    if not path.is_file():
        make_folder(path.parent)
        tmp = temp_beside(path)  # mode 0600
        try:
            tmp.write_bytes(_make_local_pem())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    creds = _split_pem(path.read_bytes())
    if not creds.key or not creds.chain:
        raise InputError(path, "is not a masquerade signing file (expected a private key and certificates); delete it")
    return creds


def load_credentials(cert: str | os.PathLike, key: str | os.PathLike) -> Credentials:
    """The user's own certificate chain (PEM) and private key (PEM)."""
    out = []
    for p, what, marker in (
        (cert, "certificate chain", b"CERTIFICATE-----"),
        (key, "private key", b"PRIVATE KEY-----"),
    ):
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise InputError(p, f"cannot read the {what} ({e.strerror or e})") from None
        if marker not in data:
            raise InputError(p, f"is not a PEM {what}")
        out.append(data)
    return Credentials(*out)


def _manifest(title: str, model_id: str) -> str:
    agent = {"name": "masquerade", "version": __version__}
    action = {
        "action": "c2pa.created",
        "digitalSourceType": SOURCE_TYPE,
        "softwareAgent": agent,
        "parameters": {"org.masquerade.model_id": model_id},
    }
    return json.dumps(
        {
            "claim_generator_info": [agent],
            "title": title,
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [action]}}],
        }
    )


def sign_file(path: str | os.PathLike, model_id: str, creds: Credentials, title: str | None = None) -> None:
    """Add a signed manifest to the finished file at `path` (in place, atomically). `title` names the file
    the manifest describes (default: its name; a temporary file passes its final name)."""
    import c2pa

    path = Path(path)
    mime = MIME[path.suffix.lower()]
    signed = temp_beside(path)
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", creds.chain, creds.key, None))
        builder = c2pa.Builder(_manifest(title or path.name, model_id))
        with open(path, "rb") as src, open(signed, "wb") as dst:
            builder.sign(signer, mime, src, dst)
        publish(signed, path)
    except c2pa.C2paError as e:
        raise MasqueradeError(f"{path}: could not add C2PA content credentials ({e})") from None
    finally:
        signed.unlink(missing_ok=True)


def read_manifest(path: str | os.PathLike) -> ManifestReport:
    """The file's active C2PA manifest, validated: signature, hash binding, signer, actions, model id."""
    path = Path(path)
    if not supports(path):
        return ManifestReport(False, error=f"C2PA is not read from {path.suffix or 'this'} files")
    import c2pa

    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader(MIME[path.suffix.lower()], f)
            manifest = reader.get_active_manifest() or {}
            state = reader.get_validation_state() or ""
            results = (reader.get_validation_results() or {}).get("activeManifest", {})
    except c2pa.C2paError as e:
        missing = "ManifestNotFound" in type(e).__name__ or "no JUMBF" in str(e)
        return ManifestReport(False, error="" if missing else str(e).splitlines()[0])
    except OSError as e:
        return ManifestReport(False, error=e.strerror or str(e))
    failures = [x.get("code", "") for x in results.get("failure", [])]
    sig = manifest.get("signature_info") or {}
    actions, source, model_id = [], "", None
    for a in manifest.get("assertions", []):
        if a.get("label", "").startswith("c2pa.actions"):
            for act in a.get("data", {}).get("actions", []):
                actions.append(act.get("action", ""))
                source = source or act.get("digitalSourceType", "")
                model_id = model_id or (act.get("parameters") or {}).get("org.masquerade.model_id")
    return ManifestReport(
        present=True,
        valid=state in ("Valid", "Trusted"),
        binding_ok=not any("mismatch" in c for c in failures),
        trusted=state == "Trusted",
        signer=sig.get("common_name", ""),
        issuer=sig.get("issuer", ""),
        source_type=source.rsplit("/", 1)[-1],
        actions=actions,
        model_id=model_id,
        failures=[c for c in failures if c != "signingCredential.untrusted"],
    )
