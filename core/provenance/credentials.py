"""C2PA content credentials for rendered videos: a signed manifest inside the mp4 that says it was
made by an AI tool (c2pa.actions: c2pa.created, digitalSourceType trainedAlgorithmicMedia), with
the tool and its version and the watermark's content id.

The user's own key and certificate sign it (``--sign-key/--sign-cert`` or NPCFACE_SIGN_KEY /
NPCFACE_SIGN_CERT). Without them npcface makes a throwaway test CA and signer in memory, named
"npcface self-made test signer" and saying so in the manifest: such a signature proves the file
was not changed since it was signed, and nothing about who made it.

Signing is offline: no timestamp authority is asked (ta_url None), nothing is fetched; reading
turns off c2pa-rs's remote-manifest and OCSP fetches.
"""
from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ControlError

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SELF_MADE_SIGNER = "npcface self-made test signer"
SELF_MADE_NOTE = ("signed with a self-made test key that npcface generated: the signature shows the file is "
                  "unchanged since signing, not who made it")
NPCFACE_ASSERTION = "org.npcface.generated"
UNTRUSTED = "signingCredential.untrusted"
KEY_ENV, CERT_ENV = "NPCFACE_SIGN_KEY", "NPCFACE_SIGN_CERT"


@dataclass(frozen=True)
class Credentials:
    """A signing key and its certificate chain (PEM), and whether npcface made them itself."""

    private_key_pem: bytes
    cert_chain_pem: bytes
    algorithm: str  # a C2PA signing algorithm: es256, es384, es512, ps256, ed25519
    self_made: bool


@dataclass(frozen=True)
class ManifestReport:
    """What verify says about a file's C2PA manifest."""

    present: bool
    validation: str  # "Valid", "Trusted", "Invalid", or "" when there is no manifest
    signature_valid: bool  # the claim's signature and hashes check out (the file is as signed)
    trusted: bool  # the signer chains to a trust list (never for a self-made key)
    generated: bool  # an action with digitalSourceType trainedAlgorithmicMedia
    generator: str  # claim generator name and version
    signer: str  # the signing certificate's common name and issuer
    self_made: bool
    problems: tuple[str, ...]  # failure codes from validation


def load_credentials(key_path: str | None, cert_path: str | None) -> Credentials:
    """The user's key and certificate (PEM files), else NPCFACE_SIGN_KEY / NPCFACE_SIGN_CERT, else a
    self-made test signer. Raises ControlError for one without the other or files that do not parse."""
    key_path = key_path or os.environ.get(KEY_ENV) or None
    cert_path = cert_path or os.environ.get(CERT_ENV) or None
    if key_path is None and cert_path is None:
        return self_made_credentials()
    if key_path is None or cert_path is None:
        raise ControlError(f"signing needs both a key and a certificate (--sign-key/--sign-cert or {KEY_ENV}/{CERT_ENV})")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key_pem, cert_pem = _read(key_path, "signing key"), _read(cert_path, "signing certificate")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ControlError(f"{key_path}: not an unencrypted PEM private key ({exc})") from None
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise ControlError(f"{cert_path}: not a PEM certificate chain ({exc})") from None
    if certs[0].public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ControlError(f"{cert_path}: its first certificate is not for the key in {key_path}")
    return Credentials(private_key_pem=key_pem, cert_chain_pem=cert_pem, algorithm=_algorithm(key), self_made=False)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ControlError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _algorithm(key) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ControlError(f"signing key type {type(key).__name__} is not one C2PA signs with "
                       "(EC P-256/384/521, RSA, Ed25519)")


@lru_cache(maxsize=1)
def self_made_credentials() -> Credentials:
    """A test CA and an end-entity signer made in memory (once per process; never written)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "npcface self-made test key, proves nothing")])

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, public_key, ca: bool) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("npcface self-made test CA"))
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
                .add_extension(usage(sign=not ca), critical=True))

    ca_cert = (certificate("npcface self-made test CA", ca_key.public_key(), True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    # C2PA's certificate profile wants an end-entity signer with an extended key usage and the CA's key id
    leaf = (certificate(SELF_MADE_SIGNER, key.public_key(), False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return Credentials(
        private_key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        cert_chain_pem=leaf.public_bytes(pem) + ca_cert.public_bytes(pem), algorithm="es256", self_made=True)


def manifest_definition(title: str, watermark_id: str | None, self_made: bool) -> dict:
    from ... import __version__

    agent = {"name": "npcface", "version": __version__}
    generated = {"tool": "npcface", "version": __version__, "watermark": "npcface invisible watermark v1",
                 "signer": SELF_MADE_NOTE if self_made else "signed with the user's key"}
    if watermark_id is not None:
        generated["watermark_content_id"] = watermark_id
    return {
        "claim_generator_info": [agent],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA, "softwareAgent": agent,
                "description": "talking portrait animated from a picture and a voice line by npcface"}]}},
            {"label": NPCFACE_ASSERTION, "data": generated},
        ],
    }


def sign_mp4(path: str | Path, credentials: Credentials, watermark_id: str | None = None) -> None:
    """Embed a signed C2PA manifest in the mp4 at ``path`` (rewritten in place)."""
    import c2pa

    path = Path(path)
    signed = path.with_name(path.name + ".c2pa-tmp")
    info = c2pa.C2paSignerInfo(credentials.algorithm.encode(), credentials.cert_chain_pem,
                               credentials.private_key_pem, None)  # None: no timestamp authority, offline
    try:
        with c2pa.Signer.from_info(info) as signer, \
                c2pa.Builder(manifest_definition(path.name, watermark_id, credentials.self_made)) as builder:
            builder.sign_file(str(path), str(signed), signer)
        signed.replace(path)
    except c2pa.C2paError as exc:
        raise ControlError(f"cannot sign {path.name} with content credentials: {exc} (C2PA wants an end-entity "
                           "certificate with digitalSignature key usage and an extended key usage such as "
                           "emailProtection, and its CA after it)") from None
    finally:
        signed.unlink(missing_ok=True)


def read_manifest(path: str | Path) -> ManifestReport:
    """The active C2PA manifest of a file and whether its signature validates (no network)."""
    import c2pa

    empty = ManifestReport(False, "", False, False, False, "", "", False, ())
    # offline: never fetch a manifest a file points to, nor ask OCSP about its certificate
    offline = c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})
    try:
        reader = c2pa.Reader.try_create(str(path), context=offline)
    except c2pa.C2paError as exc:
        text = str(exc)
        if "NotSupported" in type(exc).__name__ or "type is unsupported" in text:
            return empty  # a format C2PA has no place for (or cannot tell): no manifest
        return ManifestReport(True, "Invalid", False, False, False, "", "", False, (f"unreadable manifest: {text}",))
    if reader is None:
        return empty
    with reader:
        manifest = reader.get_active_manifest() or {}
        state = reader.get_validation_state() or ""
        results = reader.get_validation_results() or {}
    failures = tuple(item.get("code", "?") for item in (results.get("activeManifest") or {}).get("failure", []))
    tampered = tuple(code for code in failures if code != UNTRUSTED)  # untrusted: valid, not on a trust list
    info = manifest.get("signature_info") or {}
    generator = ", ".join(f"{g.get('name', '?')} {g.get('version', '')}".strip()
                          for g in manifest.get("claim_generator_info") or [])
    return ManifestReport(
        present=True, validation=state, signature_valid=state in ("Valid", "Trusted") and not tampered,
        trusted=state == "Trusted",
        generated=TRAINED_ALGORITHMIC_MEDIA in json.dumps(manifest.get("assertions") or []),
        generator=generator, signer=f"{info.get('common_name', '?')} (issuer {info.get('issuer', '?')})",
        self_made=info.get("common_name") == SELF_MADE_SIGNER, problems=failures)
