"""A strict zip reader for the packaging tests, written apart from the tool's own check.

It reads a wheel the way streaming installers (uv) and PyPI's upload check do: local headers
walked from byte 0, each held against its central directory entry, and nothing allowed after
the end record. Python's zipfile, which pip uses, forgives all of that.
"""

import struct

LOCAL = b"PK\x03\x04"
CENTRAL = b"PK\x01\x02"
END = b"PK\x05\x06"
DATA_DESCRIPTOR_FLAG = 0x08


def _central_directory(data):
    end = data.rfind(END)
    if end < 0:
        raise ValueError("no end-of-central-directory record")
    _, _, on_disk, total, size, offset, comment = struct.unpack("<HHHHIIH", data[end + 4:end + 22])
    entries, cursor = [], offset
    for _ in range(total):
        if data[cursor:cursor + 4] != CENTRAL:
            raise ValueError(f"no central directory entry at byte {cursor}")
        (flags, method, _t, _d, crc, csize, usize, name_len, extra_len, comment_len,
         _disk, _int, _ext, local_offset) = struct.unpack("<HHHHIIIHHHHHII", data[cursor + 8:cursor + 46])
        name = data[cursor + 46:cursor + 46 + name_len]
        entries.append({"name": name, "flags": flags, "method": method, "crc": crc, "csize": csize,
                        "usize": usize, "offset": local_offset, "comment": comment_len})
        cursor += 46 + name_len + extra_len + comment_len
    return entries, {"at": end, "on_disk": on_disk, "total": total, "size": size, "offset": offset,
                     "comment": comment, "directory_end": cursor}


def problems(data):
    """Every way two zip readers could read ``data`` (bytes) differently; [] for a clean zip."""
    entries, end = _central_directory(data)
    found = []
    trailing = len(data) - (end["at"] + 22 + end["comment"])
    if trailing:
        found.append(f"{trailing} bytes after the end record")
    if end["comment"]:
        found.append("archive comment")
    if end["directory_end"] != end["at"] or end["offset"] + end["size"] != end["at"]:
        found.append("central directory does not end at the end record")
    names = [e["name"] for e in entries]
    for name in sorted({n for n in names if names.count(n) > 1}):
        found.append(f"{name!r} appears twice")
    for entry in entries:
        text = entry["name"].decode("utf-8", "replace")
        if text.startswith("/") or ".." in text.split("/") or "\\" in text:
            found.append(f"{text}: unsafe name")
        if entry["comment"]:
            found.append(f"{text}: entry comment")
    cursor = 0
    for entry in entries:
        found += _local_header_problems(data, cursor, entry)
        if data[cursor:cursor + 4] != LOCAL:
            return found
        name_len, extra_len = struct.unpack("<HH", data[cursor + 26:cursor + 30])
        cursor += 30 + name_len + extra_len + entry["csize"]
        if entry["flags"] & DATA_DESCRIPTOR_FLAG:
            cursor += 16 if data[cursor:cursor + 4] == b"PK\x07\x08" else 12
    if cursor != end["offset"]:
        found.append(f"{end['offset'] - cursor} bytes between the last member and the central directory")
    return found


def _local_header_problems(data, cursor, entry):
    text = entry["name"].decode("utf-8", "replace")
    if entry["offset"] != cursor:
        return [f"{text}: central directory says byte {entry['offset']}, the walk is at byte {cursor}"]
    if data[cursor:cursor + 4] != LOCAL:
        return [f"{text}: no local header at byte {cursor}"]
    flags, method, _t, _d, crc, csize, usize, name_len = struct.unpack("<HHHHIIIH", data[cursor + 6:cursor + 28])
    local = {"name": data[cursor + 30:cursor + 30 + name_len], "flags": flags, "method": method,
             "crc": crc, "csize": csize, "usize": usize}
    found = [f"{text}: local {field} differs" for field in local if local[field] != entry[field]]
    if flags & DATA_DESCRIPTOR_FLAG:
        found.append(f"{text}: data descriptor")
    return found
