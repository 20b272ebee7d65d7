"""MetaImage headers: the data files a ``.mhd`` / ``.mha`` header points to are checked
before SimpleITK reads anything.

A header names its pixel data in its last key, ``ElementDataFile``: ``LOCAL`` (the data
follow the header in the same file), one file name, ``LIST`` (the names follow, one per
line) or a ``printf`` pattern with a range (``slice%03d.raw 1 40 1``). Only regular files
inside the header's own folder are accepted: an absolute path, a ``..`` that leaves the
folder, a symbolic link out of it or a device such as ``/dev/urandom`` is refused, so a
header from elsewhere cannot make the reader (and so the napari reader and ``segment``)
read another file as image data. Detached NRRD headers (``data file:``, ``datafile:``) are
checked the same way.
"""

from __future__ import annotations

from pathlib import Path

HEADER_LIMIT = 1 << 20  # a header (with a LIST of names) is far smaller than this


class MetaImageError(ValueError):
    """A MetaImage header is malformed or points outside its folder."""


def data_file_names(header: Path) -> list[str]:
    """The data file names ``header`` declares (empty for ``LOCAL``)."""
    with open(header, "rb") as handle:
        text = handle.read(HEADER_LIMIT)
    lines = text.split(b"\n")
    for index, raw in enumerate(lines):
        key, sep, value = raw.decode("latin-1").partition("=")
        if not sep or key.strip() != "ElementDataFile":
            continue
        value = value.strip()
        if value.upper() == "LOCAL":
            return []
        if value.upper().split()[:1] == ["LIST"]:
            return [ln.decode("latin-1").strip() for ln in lines[index + 1 :] if ln.strip()]
        if "%" in value:
            parts = value.split()
            try:
                pattern, first, last = parts[0], int(parts[1]), int(parts[2])
                step = int(parts[3]) if len(parts) > 3 else 1
                return [pattern % k for k in range(first, last + 1, step)]
            except (IndexError, ValueError, TypeError) as err:
                raise MetaImageError(
                    f"cannot read the ElementDataFile pattern {value!r} ({err})."
                ) from None
        return [value]
    raise MetaImageError("not a MetaImage header: it has no ElementDataFile line.")


def nrrd_data_file_names(header: Path) -> list[str]:
    """The data files a detached NRRD header names (empty when the data are attached)."""
    with open(header, "rb") as handle:
        text = handle.read(HEADER_LIMIT).decode("latin-1")
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if not line.strip():  # the blank line ends the header (attached data follow)
            return []
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("data file", "datafile"):
            value = value.lstrip("=").strip()
            if value.upper().split()[:1] == ["LIST"]:
                return [ln.strip() for ln in lines[index + 1 :] if ln.strip()]
            if "%" in value:
                parts = value.split()
                try:
                    first, last = int(parts[1]), int(parts[2])
                    step = int(parts[3]) if len(parts) > 3 else 1
                    return [parts[0] % k for k in range(first, last + 1, step)]
                except (IndexError, ValueError, TypeError) as err:
                    raise MetaImageError(
                        f"cannot read the data file pattern {value!r} ({err})."
                    ) from None
            return [value]
    return []


def check_data_files(header: Path) -> None:
    """Raise :class:`MetaImageError` unless every data file of ``header`` (a MetaImage or
    NRRD header) is a regular file inside the header's folder."""
    folder = header.parent.resolve()
    is_nrrd = header.name.lower().endswith((".nrrd", ".nhdr"))
    names = nrrd_data_file_names(header) if is_nrrd else data_file_names(header)
    for name in names:
        problem = None
        target = Path(name)
        if not name:
            problem = "an empty name"
        elif target.is_absolute():
            problem = "an absolute path"
        else:
            resolved = (header.parent / target).resolve()
            if folder not in resolved.parents:
                problem = "a path outside the header's folder"
            elif not resolved.exists():
                problem = "a file that does not exist"
            elif not resolved.is_file():
                problem = "something that is not a regular file"
        if problem:
            raise MetaImageError(
                f"its data file {name!r} is {problem}. A MetaImage or NRRD header may only "
                "point to data files in its own folder; move the data next to the header and "
                "name it there (e.g. ElementDataFile = volume.raw)."
            )
