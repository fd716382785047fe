"""Text lists as editors save them: the one reader of every list file voxface reads (metadata, splits, trial lists,
manifests, ``embed``'s file list, a face tree's ``identities.csv``).

Spreadsheet programs and Windows editors start a file with a byte-order mark, end lines with CRLF, leave spaces
after a value, or save "Unicode text" as UTF-16: none of that changes what a list says, so none of it may change
what voxface reads. Text that is no Unicode at all is named with its file and line.
"""

from __future__ import annotations

import codecs
import lzma
from pathlib import Path

from voxface.errors import ProtocolError


def read_text(path: str | Path) -> str:
    """The text of a UTF-8 file (plain or ``.xz``), without a byte-order mark; UTF-16 with its mark is read too.

    Raises ProtocolError naming the file (and, for bytes that are not UTF-8, the line) when it cannot be read.
    """
    path = Path(path)
    try:
        if path.suffix == ".xz":
            with lzma.open(path) as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise ProtocolError(f"{path} does not exist") from None
    except (OSError, lzma.LZMAError, EOFError) as err:
        raise ProtocolError(f"{path}: cannot read it ({err})") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's and Notepad's "Unicode text"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise ProtocolError(f"{path}: broken UTF-16 text ({err.reason}); save the file as UTF-8") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ProtocolError(f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the file as "
                            "UTF-8") from None


def read_lines(path: str | Path) -> list[tuple[int, str]]:
    """The non-blank lines of a text file as ``(line number, line)``, each without its line end (LF, CRLF or CR)
    and the spaces around it; tabs are kept, since they separate fields."""
    lines = read_text(path).splitlines()
    return [(number, line.strip(" ")) for number, line in enumerate(lines, start=1) if line.strip()]


def fields(values: list[str], expected: int) -> list[str]:
    """A row's fields, each stripped of the spaces around it; empty fields past the ``expected`` number (separators
    an editor left at the end of a row) are dropped."""
    values = [value.strip() for value in values]
    while len(values) > expected and not values[-1]:
        values.pop()
    return values
