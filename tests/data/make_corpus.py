"""Writes the FASTA test corpus into valid/ and malformed/ (run from tests/data)."""
import gzip
import random
import struct
import zlib
from pathlib import Path

VALID = {
    "multiline.fasta": b">P1 first protein\nMKVLA\nAGHT\n>P2\nGG\n",
    "crlf.fasta": b">P1 first protein\r\nMKVLA\r\nAGHT\r\n>P2\r\nGG\r\n",
    "blank_and_comments.fasta": b"; a comment before anything\n\n>P1 first protein\nMKVLA\n\n;inside\nAGHT\n\n\n>P2\nGG\n\n",
    "no_trailing_newline.fasta": b">P1 first protein\nMKVLA\nAGHT\n>P2\nGG",
    "spaces_in_sequence.fasta": b">P1   first protein  \nMKV LA\n AG\tHT \n>P2\t\nG G\n",
    "lowercase.fasta": b">p1 Mixed Case\nmkvLA\nagHT\n",
    "empty.fasta": b"",
    "only_comments.fasta": b";nothing here\n\n",
    "empty_sequence.fasta": b">P1 no residues\n>P2\nGG\n",
    "utf8_description.fasta": ">P1 Protéine α\nMKV\n".encode(),
    "utf8_sequence.fasta": ">P1 Å in a sequence line\nMKÅV\n>P2\nAGHT\n".encode(),
}

MALFORMED = {
    "missing_header.fasta": b"MKVLA\n>P1\nAG\n",
    "missing_header_after_blank.fasta": b"\n;comment\nMKVLA\n",
    "empty_id.fasta": b">P1\nMK\n>\nMKV\n",
    "empty_id_spaces.fasta": b">P1\nMK\n>   \t \nMKV\n",
    "invalid_utf8_header.fasta": b">P1\nMK\n>P2 bad \xff byte\nMKV\n",
    "invalid_utf8_sequence.fasta": b">P1\nMK\n>P2\nMKV\nMK\xc3V\n",
}


def bgzf(data, block=64):
    """BGZF: gzip members with a BC extra field, then the empty end-of-file block."""
    out = b""
    for i in range(0, len(data), block):
        chunk = data[i : i + block]
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        deflated = c.compress(chunk) + c.flush()
        bsize = 18 + len(deflated) + 8 - 1
        header = b"\x1f\x8b\x08\x04" + b"\0\0\0\0" + b"\0\xff" + struct.pack("<H", 6) + b"BC" + struct.pack("<HH", 2, bsize)
        out += header + deflated + struct.pack("<II", zlib.crc32(chunk), len(chunk))
    return out + bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


for folder, files in [("valid", VALID), ("malformed", MALFORMED)]:
    Path(folder).mkdir(exist_ok=True)
    for name, data in files.items():
        Path(folder, name).write_bytes(data)

multi = VALID["multiline.fasta"]
Path("valid/multi_member.fasta.gz").write_bytes(gzip.compress(multi[:18], mtime=0) + gzip.compress(multi[18:], mtime=0))
Path("valid/bgzf.fasta.bgz").write_bytes(bgzf(multi, block=7))
rng = random.Random(7)
lines = "".join("".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(60)) + "\n" for _ in range(2000))
whole = gzip.compress(b">P1 first protein\n" + lines.encode(), mtime=0)
Path("malformed/truncated.fasta.gz").write_bytes(whole[: len(whole) // 2])
corrupt = bytearray(gzip.compress(multi * 50, mtime=0))
corrupt[40:60] = b"\xff" * 20
Path("malformed/corrupt.fasta.gz").write_bytes(bytes(corrupt))
