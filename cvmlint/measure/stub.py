"""systemd-stub 257 (Debian 13): the UKI sections it measures and the initrd it hands Linux.

    PCR 11   for each section present, in this order: its name (ASCII + NUL), then its contents
             (VirtualSize bytes); `.pcrsig` is never measured
    initrd   .ucode, .initrd, then one small cpio per embedded file (.pcrsig, .pcrpkey, .osrel,
             .profile -> /.extra/<name>), each padded to 4 bytes when there is more than one part;
             Linux's EFI stub measures what it receives into PCR 9
    cmdline  .cmdline up to its first NUL, control characters made spaces, outer whitespace cut;
             handed to Linux as UTF-16 with its NUL (Linux measures that as its LoadOptions)

A cpio here is newc: "070701", 13 fields of 8 lower-case hex digits (inode, mode, uid, gid, nlink,
mtime, size, dev major/minor, rdev major/minor, name size, check), the name with its NUL, padded to
4 bytes, then the data padded to 4; the directory /.extra (0555) first, inodes from 1, and the
trailer record. Facts from systemd 257's src/boot (stub.c, cpio.c, util.c), checked against a real
boot (tests/build).
"""

from __future__ import annotations

SECTIONS = (
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey",
    ".profile", ".dtbauto", ".hwids",
)  # fmt: skip
EMBEDDED = ((".pcrsig", "tpm2-pcr-signature.json"), (".pcrpkey", "tpm2-pcr-public-key.pem"),
            (".osrel", "os-release"), (".profile", "profile"))  # fmt: skip
"""Sections the stub hands Linux as files in /.extra, in its order."""
S_IFDIR, S_IFREG = 0o040000, 0o100000
TRAILER = b"070701" + b"00000000" * 4 + b"00000001" + b"00000000" * 6 + b"0000000B" + b"00000000" + b"TRAILER!!!\0"


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _record(inode: int, mode: int, name: str, data: bytes = b"") -> bytes:
    path = name.encode() + b"\0"
    fields = (inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(path), 0)
    header = b"070701" + b"".join(b"%08x" % value for value in fields)
    return _padded(header + path) + _padded(data)


def extra_file(name: str, data: bytes) -> bytes:
    """The cpio holding /.extra/NAME (read-only), as the stub builds it for an embedded section."""
    return (
        _record(1, S_IFDIR | 0o555, ".extra") + _record(2, S_IFREG | 0o444, f".extra/{name}", data) + _padded(TRAILER)
    )


def initrd(sections: dict[str, bytes]) -> bytes | None:
    """The initrd the stub hands Linux from the UKI's sections (no addons, credentials or extensions)."""
    parts = [sections[name] for name in (".ucode", ".initrd") if name in sections]
    parts += [extra_file(file, sections[name]) for name, file in EMBEDDED if name in sections]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else b"".join(_padded(part) for part in parts)


def cmdline(section: bytes) -> str:
    """The command line the stub takes from `.cmdline` (mangled as its util.c does)."""
    text = section.split(b"\0", 1)[0].decode("utf-8", "replace")
    text = "".join(c if ord(c) <= 0xFFFF else "" for c in text)
    text = "".join(" " if ord(c) <= 0x20 or ord(c) == 0x7F else c for c in text)
    return text.strip(" ")
