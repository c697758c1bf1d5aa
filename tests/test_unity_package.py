"""The Unity package as Unity sees it: its manifest, the .meta files Unity needs, and one
component per file (plain file checks: no mono needed)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "unity_sample"


def test_package_manifest_is_a_valid_upm_package():
    import json
    import re

    manifest = json.loads((SAMPLE / "package.json").read_text())
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", manifest["name"]) and manifest["name"].count(".") >= 2
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert re.fullmatch(r"20\d\d\.\d", manifest["unity"])
    for sample in manifest["samples"]:
        assert (SAMPLE / sample["path"]).is_dir()
    for asmdef in SAMPLE.glob("Runtime/*/*.asmdef"):
        json.loads(asmdef.read_text())
    core = json.loads((SAMPLE / "Runtime" / "Core" / "Npcface.Core.asmdef").read_text())
    assert core["noEngineReferences"] is True  # the core builds without UnityEngine (compiled so above)


def test_every_asset_has_its_meta_file_with_a_unique_guid():
    """A git-URL (immutable) package whose files lack .meta files is ignored by Unity."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("write_meta_files", SAMPLE / "Tools~" / "write_meta_files.py")
    metas = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(metas)
    assets = metas.assets()
    assert any(p.name == "README.md" for p in assets) and any(p.suffix == ".cs" for p in assets)
    guids = []
    for path in assets:
        meta = path.with_name(path.name + ".meta")
        assert meta.exists(), f"{meta.relative_to(ROOT)} is missing: run python3 unity_sample/Tools~/write_meta_files.py"
        assert meta.read_text() == metas.meta_text(path), f"{meta.relative_to(ROOT)} is stale"
        guids.append(meta.read_text().split("guid: ")[1][:32])
    assert len(set(guids)) == len(guids)
    orphans = [m for m in SAMPLE.rglob("*.meta") if not m.with_name(m.name[:-5]).exists()]
    assert orphans == []


def test_each_component_lives_in_a_file_of_its_own_name():
    """Unity can only add a MonoBehaviour / create a ScriptableObject whose file is named after it."""
    import re

    sources = sorted(SAMPLE.glob("Runtime/Components/*.cs")) + sorted(SAMPLE.glob("Samples~/*/*.cs"))
    for source in sources:
        classes = re.findall(r"class (\w+)\s*:\s*(?:MonoBehaviour|ScriptableObject)\b", source.read_text())
        assert classes == [source.stem], source.name
