"""Writes the .meta file Unity needs beside every file and folder of the package.

Unity ignores assets without .meta files in immutable packages (installed from a git URL), so
they are committed. GUIDs are derived from the path, so running this again changes nothing;
folders ending in "~" are hidden from Unity and get none. Run: python3 unity_sample/Tools~/write_meta_files.py
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
TRAILER = "  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
IMPORTERS = {
    ".cs": "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n  executionOrder: 0\n"
           "  icon: {instanceID: 0}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n",
    ".asmdef": "AssemblyDefinitionImporter:\n" + TRAILER,
    ".md": "TextScriptImporter:\n" + TRAILER,
    ".json": "TextScriptImporter:\n" + TRAILER,
}


def guid_for(relative: str) -> str:
    return hashlib.md5(f"com.npcface.client/{relative}".encode()).hexdigest()


def meta_text(path: Path) -> str:
    relative = path.relative_to(PACKAGE).as_posix()
    head = f"fileFormatVersion: 2\nguid: {guid_for(relative)}\n"
    if path.is_dir():
        return head + "folderAsset: yes\nDefaultImporter:\n" + TRAILER
    if relative == "package.json":
        return head + "PackageManifestImporter:\n" + TRAILER
    return head + IMPORTERS.get(path.suffix, "DefaultImporter:\n" + TRAILER)


def assets(root: Path = PACKAGE) -> list[Path]:
    """Every file and folder Unity imports: not hidden (~, .), not a .meta itself."""
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.name.endswith("~") or path.suffix == ".meta":
            continue
        found.append(path)
        if path.is_dir():
            found.extend(assets(path))
    return found


def main() -> int:
    written = 0
    for path in assets():
        meta = path.with_name(path.name + ".meta")
        text = meta_text(path)
        if not meta.exists() or meta.read_text() != text:
            meta.write_text(text)
            written += 1
    print(f"{written} .meta files written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
