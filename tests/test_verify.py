"""`npcface verify` and the C2PA content credentials in rendered mp4s: exit 0 on what npcface
rendered (watermark and a validating manifest), 1 on real pictures and plain videos, 2 with one
line on bad input; a tampered file's signature fails; a user's own key signs."""
from __future__ import annotations

import datetime
import re

import numpy as np
import pytest

from npcface.bridge.cli import main as npcface_main
from npcface.core.provenance import credentials as provenance
from npcface.core.errors import ControlError
from npcface.core.render.renderer import Renderer
from npcface.core.render.rig import build_rig, load_image
from npcface.core.types import MotionFrame
from npcface.core.formats.video import write_mp4, write_png_sequence


def frame(t: float) -> MotionFrame:
    weights = np.zeros(52, dtype=np.float32)
    weights[24] = 0.3 + 0.3 * np.sin(6 * t)  # JawOpen in the Live Link order
    return MotionFrame(time=t, head_rotation=(5 * np.sin(t), 0.0, 0.0), head_translation=(0.0, 0.0, 0.0),
                       gaze_left=(0.0, 0.0), gaze_right=(0.0, 0.0), blendshapes=weights)


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """A rendered mp4 (watermarked, signed), one of its PNG frames, and a plain unsigned mp4."""
    from conftest import FIXTURES

    folder = tmp_path_factory.mktemp("verify")
    rig = build_rig(load_image(FIXTURES / "portrait_astronaut.png"))
    marked = [Renderer(rig, 384, line_id="x").render(frame(i / 25)).rgba for i in range(20)]
    plain = [Renderer(rig, 384, watermark=False).render(frame(i / 25)).rgba for i in range(20)]
    write_mp4(folder / "line.mp4", marked, 25)
    write_png_sequence(folder / "frames", marked[:1])
    write_mp4(folder / "plain.mp4", plain, 25, sign=False)
    return folder


def verify(capsys, path) -> tuple[int, str, str]:
    code = npcface_main(["verify", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_rendered_mp4_is_detected_by_watermark_and_credentials(renders, capsys):
    code, out, _ = verify(capsys, renders / "line.mp4")
    assert code == 0
    assert re.search(r"watermark: found \(confidence z=\d+\.\d.*\): npcface, format v1, content id [0-9a-f]{4}", out)
    assert "content credentials: C2PA, signature valid, says AI-generated (trainedAlgorithmicMedia), by npcface" in out
    assert "self-made test key" in out and "verdict: generated content detected" in out


def test_manifest_of_a_rendered_mp4_validates_and_says_generated(renders):
    report = provenance.read_manifest(renders / "line.mp4")
    assert report.present and report.signature_valid and report.generated and report.self_made
    assert not report.trusted  # a self-made signer is on nobody's trust list
    assert report.generator.startswith("npcface ")


def test_a_png_frame_is_detected_by_its_watermark(renders, capsys):
    code, out, _ = verify(capsys, renders / "frames" / "frame_000000.png")
    assert code == 0 and "watermark: found" in out and "content credentials: none" in out


def test_real_picture_and_plain_video_are_not_detected(renders, capsys):
    from conftest import FIXTURES

    for path in (FIXTURES / "portrait_astronaut.png", renders / "plain.mp4"):
        code, out, _ = verify(capsys, path)
        assert code == 1, out
        assert "watermark: not found" in out and "content credentials: none" in out
        assert "verdict: no generated content detected" in out


def test_tampered_video_fails_its_signature_but_keeps_its_watermark(renders, tmp_path, capsys):
    data = bytearray((renders / "line.mp4").read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 2000] ^= 0x01  # one bit of the coded video
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    report = provenance.read_manifest(tampered)
    assert report.present and not report.signature_valid and report.problems
    code, out, _ = verify(capsys, tampered)
    assert "signature INVALID" in out and "watermark: found" in out and code == 0


def test_bad_input_gets_exit_2_and_one_line(renders, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    video = (renders / "line.mp4").read_bytes()
    truncated_video = tmp_path / "cut.mp4"
    truncated_video.write_bytes(video[:len(video) // 2])
    from conftest import FIXTURES

    picture = (FIXTURES / "portrait_astronaut.png").read_bytes()
    truncated_picture = tmp_path / "cut.png"
    truncated_picture.write_bytes(picture[:len(picture) // 3])
    cases = {tmp_path / "missing.mp4": "no such file", text: "not a video or picture",
             truncated_video: "truncated or damaged video", truncated_picture: "truncated or damaged picture",
             tmp_path: "is not a file"}
    for path, message in cases.items():
        code, out, err = verify(capsys, path)
        assert code == 2, (path, out, err)
        assert err.count("\n") == 1 and message in err and err.startswith("npcface verify: error:"), err


def user_credentials(folder):
    """A user's own CA and signer, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Studio CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Studio Renders")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "cert.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    return folder / "key.pem", folder / "cert.pem"


def test_a_users_key_signs_and_is_named(tmp_path):
    key, cert = user_credentials(tmp_path)
    credentials = provenance.load_credentials(str(key), str(cert))
    assert not credentials.self_made and credentials.algorithm == "es256"
    path = tmp_path / "signed.mp4"
    write_mp4(path, [np.full((32, 32, 3), v, np.uint8) for v in range(0, 200, 20)], 10, credentials=credentials)
    report = provenance.read_manifest(path)
    assert report.signature_valid and report.generated and not report.self_made
    assert "Studio Renders" in report.signer


def test_signing_inputs_get_specific_errors(tmp_path, monkeypatch):
    key, cert = user_credentials(tmp_path)
    monkeypatch.delenv(provenance.KEY_ENV, raising=False)
    monkeypatch.delenv(provenance.CERT_ENV, raising=False)
    with pytest.raises(ControlError, match="needs both a key and a certificate"):
        provenance.load_credentials(str(key), None)
    with pytest.raises(ControlError, match="not an unencrypted PEM private key"):
        provenance.load_credentials(str(cert), str(cert))
    with pytest.raises(ControlError, match="not a PEM certificate chain"):
        provenance.load_credentials(str(key), str(key))
    with pytest.raises(ControlError, match="cannot read the signing key"):
        provenance.load_credentials(str(tmp_path / "none.pem"), str(cert))
    (tmp_path / "old_cert.pem").write_bytes(cert.read_bytes())
    other, _ = user_credentials(tmp_path)  # a new key and certificate in key.pem, cert.pem
    monkeypatch.setenv(provenance.KEY_ENV, str(other))
    monkeypatch.setenv(provenance.CERT_ENV, str(tmp_path / "cert.pem"))
    assert not provenance.load_credentials(None, None).self_made  # the environment's key is used
    with pytest.raises(ControlError, match="is not for the key"):
        provenance.load_credentials(str(other), str(tmp_path / "old_cert.pem"))


def test_render_signs_with_the_users_key_and_verify_names_it(tmp_path, capsys):
    from conftest import FIXTURES, fixture_line

    key, cert = user_credentials(tmp_path)
    wav, text = fixture_line("line_names")
    out = tmp_path / "line.mp4"
    code = npcface_main(["render", str(FIXTURES / "portrait_astronaut.png"), str(wav), "--text", text, "--size", "384",
                         "-o", str(out), "--sign-key", str(key), "--sign-cert", str(cert)])
    assert code == 0
    capsys.readouterr()
    code, printed, _ = verify(capsys, out)
    assert code == 0 and "signer Studio Renders" in printed and "self-made" not in printed
    assert "watermark: found" in printed
    code = npcface_main(["render", str(FIXTURES / "portrait_astronaut.png"), str(wav), "-o", str(tmp_path / "b.mp4"),
                         "--sign-key", str(key)])
    assert code == 2 and "needs both a key and a certificate" in capsys.readouterr().err
