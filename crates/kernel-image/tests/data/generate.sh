#!/bin/sh
# Regenerates the test fixtures (run from this directory). The outputs are committed, so the
# tests need none of these tools. Tools used: python3, gzip, xz (XZ Utils), zstd.
set -eu
# payload.elf: a small fake ELF64 x86-64 executable: a valid-looking ELF header, then
# pseudo-random "code" with E8/E9 (call/jmp rel32) opcodes, so that the xz x86 BCJ filter
# really converts branch targets, then some text.
python3 - <<'PY'
import struct
hdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
hdr += struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x1000000, 64, 0, 0, 64, 56, 0, 64, 0, 0)
body = bytearray()
x = 12345
while len(body) < 3072:
    x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    if x % 7 == 0:
        body += bytes([0xE8]) + struct.pack("<i", (x >> 8) % 65536 - 32768)
    elif x % 11 == 0:
        body += bytes([0xE9]) + struct.pack("<i", (x >> 4) % 4096)
    else:
        body.append((x >> 16) & 0xFF)
text = b"Ferrovisor kernel-image test payload. " * 28
open("payload.elf", "wb").write(hdr + bytes(body) + text)
open("zeros.elf", "wb").write(b"\x7fELF" + bytes(4 * 1024 * 1024 - 4))
open("not-elf.txt", "wb").write(b"#!/bin/sh\necho this is not an ELF file\n" * 20)
PY
gzip -9 -n -c payload.elf > payload.elf.gz            # no FNAME
cp payload.elf payload-named.elf && gzip -9 -f payload-named.elf   # FNAME set
# Like Linux's scripts/xz_wrap.sh: CRC32 check, x86 BCJ filter, LZMA2.
xz --format=xz --check=crc32 --x86 --lzma2=preset=9,dict=1MiB -c payload.elf > payload.elf.xz
xz --format=xz --check=crc64 -c payload.elf > payload-crc64.elf.xz
xz --format=xz --check=none -c payload.elf > payload-nocheck.elf.xz
xz --format=xz --check=sha256 -c payload.elf > payload-sha256.elf.xz
xz --format=xz --delta=dist=4 --lzma2 -c payload.elf > payload-delta.elf.xz
zstd -q -19 --check -c payload.elf > payload.elf.zst
gzip -9 -n -c zeros.elf > zeros.elf.gz
xz --check=crc32 -c zeros.elf > zeros.elf.xz
zstd -q -19 -c zeros.elf > zeros.elf.zst
gzip -9 -n -c not-elf.txt > not-elf.txt.gz
xz -c not-elf.txt > not-elf.txt.xz
zstd -q -c not-elf.txt > not-elf.txt.zst
rm zeros.elf
