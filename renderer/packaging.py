"""What the export formats share: zip files with the same bytes on every render, and text that XML can carry."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from xml.etree import ElementTree as ET

# Every entry carries this time (the zip format's earliest), so a redelivered render writes the same bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Characters XML 1.0 cannot carry at all, not even as references: course text is model output and may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    """text without the characters XML 1.0 forbids (escaping is the serializer's job)."""
    return _NOT_XML.sub("", text)


XSI = "http://www.w3.org/2001/XMLSchema-instance"
ET.register_namespace("xsi", XSI)


def xml_bytes(root: ET.Element, default_namespace: str | None = None) -> bytes:
    """root as an indented UTF-8 document. Its unqualified elements are in default_namespace when that is given
    (ElementTree's own default_namespace refuses the unqualified attributes these formats use)."""
    if default_namespace is not None:
        root.set("xmlns", default_namespace)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def deterministic_zip(entries: Mapping[str, bytes], first: tuple[str, bytes] | None = None) -> bytes:
    """A zip of entries in name order, deflated, with fixed times and permissions; first (stored, uncompressed)
    leads when given, as EPUB requires of its mimetype."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        if first is not None:
            archive.writestr(_entry(first[0]), first[1], compress_type=zipfile.ZIP_STORED)
        for name in sorted(entries):
            archive.writestr(_entry(name), entries[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.create_system = 3  # Unix, whatever the machine: the attributes above are Unix permissions
    return info
