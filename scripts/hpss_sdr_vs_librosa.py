#!/usr/bin/env python3
"""Separation quality of `ledgerline audio hpss` against librosa.effects.hpss.

Synthesizes a known harmonic part (sustained chords, a bass line and a
vibrato lead) and a known percussive part (kick, snare, hats), mixes them,
separates the mixture with ledgerline (CPU twin and GPU path) and with
librosa, and prints the SDR of each separated part against its known source:
SDR = 10 log10(sum s^2 / sum (s - s_hat)^2), plus the scale-invariant SI-SDR.
It also prints how close ledgerline's parts are to librosa's (SNR).

Not part of CI (needs `pip install librosa soundfile`). Usage:
    scripts/hpss_sdr_vs_librosa.py [--bin target/debug/ledgerline] [--seconds 10]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import librosa
import numpy as np
import soundfile as sf

SR = 44_100


def synthesize(seconds: float, seed: int = 7):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    harmonic = np.zeros_like(t)
    # Chords: one triad per 2 s bar, 5 harmonics each, slow attack.
    roots = [220.0, 174.61, 261.63, 196.0]
    for bar in range(int(np.ceil(seconds / 2))):
        f0 = roots[bar % len(roots)]
        seg = (t >= 2 * bar) & (t < 2 * bar + 2)
        local = t[seg] - 2 * bar
        env = np.minimum(local / 0.1, 1.0) * np.exp(-local * 0.4)
        for ratio in (1.0, 1.25, 1.5):
            for h in range(1, 6):
                harmonic[seg] += 0.05 / h * env * np.sin(2 * np.pi * f0 * ratio * h * local)
    # Bass: quarter notes on the root an octave down.
    for beat in range(int(seconds * 2)):
        f0 = roots[(beat // 4) % len(roots)] / 2
        seg = (t >= beat * 0.5) & (t < beat * 0.5 + 0.5)
        local = t[seg] - beat * 0.5
        harmonic[seg] += 0.2 * np.exp(-local * 3) * np.sin(2 * np.pi * f0 * local)
    # Lead with vibrato.
    phase = 2 * np.pi * np.cumsum(440.0 * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))) / SR
    harmonic += 0.08 * sum(np.sin(h * phase) / h for h in range(1, 8))

    percussive = np.zeros_like(t)
    for beat in range(int(seconds * 4)):
        start = int(beat * 0.25 * SR)
        n = min(int(0.25 * SR), len(t) - start)
        local = np.arange(n) / SR
        if beat % 4 == 0:  # kick
            percussive[start:start + n] += 0.8 * np.sin(2 * np.pi * (50 * local + 100 * (1 - np.exp(-local * 30)) / 30)) * np.exp(-local * 12)
        elif beat % 4 == 2:  # snare
            percussive[start:start + n] += 0.5 * rng.uniform(-1, 1, n) * np.exp(-local * 25)
        # hat on every sixteenth
        percussive[start:start + n] += 0.15 * np.diff(rng.uniform(-1, 1, n + 1)) * np.exp(-local * 80)
    return harmonic.astype(np.float32), percussive.astype(np.float32)


def sdr(reference, estimate):
    n = min(len(reference), len(estimate))
    s, e = reference[:n].astype(np.float64), estimate[:n].astype(np.float64)
    return 10 * np.log10(np.sum(s**2) / np.sum((s - e) ** 2))


def si_sdr(reference, estimate):
    n = min(len(reference), len(estimate))
    s, e = reference[:n].astype(np.float64), estimate[:n].astype(np.float64)
    target = (np.dot(e, s) / np.dot(s, s)) * s
    return 10 * np.log10(np.sum(target**2) / np.sum((e - target) ** 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("LEDGERLINE_BIN", "target/debug/ledgerline"))
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    harmonic, percussive = synthesize(args.seconds)
    mixture = harmonic + percussive
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mix_path = os.path.join(tmp, "mix.wav")
        sf.write(mix_path, mixture, SR, subtype="FLOAT")
        results = {}
        for backend in ("cpu", "gpu"):
            h_path, p_path = os.path.join(tmp, f"h_{backend}.wav"), os.path.join(tmp, f"p_{backend}.wav")
            done = subprocess.run(
                [args.bin, "audio", "hpss", mix_path, "--harmonic", h_path, "--percussive", p_path, "--backend", backend],
                capture_output=True, text=True,
            )
            if done.returncode != 0:
                print(f"ledgerline ({backend}) failed: {done.stderr.strip()}", file=sys.stderr)
                continue
            step = json.loads(done.stdout.strip().splitlines()[-1])
            results[f"ledgerline {backend} ({step['backend']})"] = (sf.read(h_path, dtype="float32")[0], sf.read(p_path, dtype="float32")[0])
        results["librosa.effects.hpss"] = librosa.effects.hpss(mixture)

    lib_h, lib_p = results["librosa.effects.hpss"]
    print(f"mixture: {args.seconds} s at {SR} Hz, librosa {librosa.__version__}")
    print(f"{'method':<34} {'SDR_h':>7} {'SDR_p':>7} {'SI-SDR_h':>9} {'SI-SDR_p':>9} {'vs librosa h/p (SNR dB)':>24}")
    for name, (h, p) in results.items():
        versus = f"{sdr(lib_h, h):.1f} / {sdr(lib_p, p):.1f}" if not name.startswith("librosa") else "-"
        print(f"{name:<34} {sdr(harmonic, h):7.2f} {sdr(percussive, p):7.2f} {si_sdr(harmonic, h):9.2f} {si_sdr(percussive, p):9.2f} {versus:>24}")


if __name__ == "__main__":
    main()
