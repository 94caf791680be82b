"""Writes the console bench's 3-minute files into DIR: the cover followed by
unrelated audio up to 3 minutes (cover-3min.wav, 16-bit at the cover's rate
and channels), and 3 minutes the log does not know (unknown-3min.wav).

Usage: bench_console_files.py COVER.wav DIR
"""

import math
import random
import struct
import sys
import wave

SECONDS = 180


def read_float_wav(path):
    """(rate, channels, interleaved floats) of a 32-bit float or 16-bit WAV."""
    with open(path, "rb") as f:
        data = f.read()
    at, fmt, samples = 12, None, None
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        body = data[at + 8 : at + 8 + size]
        if chunk == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif chunk == b"data":
            samples = body
        at += 8 + size + (size & 1)
    kind, channels, rate, _, _, bits = fmt
    if kind == 3 or bits == 32:
        values = struct.unpack(f"<{len(samples) // 4}f", samples)
    else:
        values = [v / 32768 for v in struct.unpack(f"<{len(samples) // 2}h", samples)]
    return rate, channels, values


def write_wav(path, rate, channels, values):
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        clipped = (max(-32768, min(32767, int(v * 32767))) for v in values)
        w.writeframes(struct.pack(f"<{len(values)}h", *clipped))


def unrelated(rate, channels, frames, seed):
    generator = random.Random(seed)
    out = []
    for i in range(frames):
        v = 0.2 * math.sin(i * 2 * math.pi * 233 / rate) + 0.05 * (generator.random() - 0.5)
        out.extend([v] * channels)
    return out


cover, directory = sys.argv[1:3]
rate, channels, values = read_float_wav(cover)
total = SECONDS * rate
padding = unrelated(rate, channels, total - len(values) // channels, 1)
write_wav(f"{directory}/cover-3min.wav", rate, channels, list(values) + padding)
write_wav(f"{directory}/unknown-3min.wav", rate, channels, unrelated(rate, channels, total, 2))
