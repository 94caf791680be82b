"""Basic Pitch's reference windowing and stitching (basic_pitch/inference.py
of basic-pitch 0.4.0, Apache-2.0, Spotify AB: get_audio_input,
window_audio_file and unwrap_output, without librosa's file loading) around
onnxruntime running the shipped model, on 22,050 Hz mono audio read as raw
little-endian float32. Writes the stitched note, onset and contour
posteriorgrams to OUT_DIR/{note,onset,contour}.f32 and their shapes to
stdout as JSON. For inference/tests/basic_pitch_onnx.rs.

Usage: basic_pitch_reference.py MODEL AUDIO.f32 OUT_DIR
"""

import json
import sys

import numpy as np
import onnxruntime

AUDIO_SAMPLE_RATE = 22050
FFT_HOP = 256
ANNOTATIONS_FPS = AUDIO_SAMPLE_RATE // FFT_HOP
AUDIO_N_SAMPLES = AUDIO_SAMPLE_RATE * 2 - FFT_HOP
N_OVERLAPPING_FRAMES = 30
OVERLAP_LEN = N_OVERLAPPING_FRAMES * FFT_HOP
HOP_SIZE = AUDIO_N_SAMPLES - OVERLAP_LEN
OUTPUTS = {"note": "StatefulPartitionedCall:1", "onset": "StatefulPartitionedCall:2", "contour": "StatefulPartitionedCall:0"}

model, audio_path, out_dir = sys.argv[1:4]
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
audio_original = np.fromfile(audio_path, dtype="<f4")
original_length = audio_original.shape[0]
audio_original = np.concatenate([np.zeros((int(OVERLAP_LEN / 2),), dtype=np.float32), audio_original])
output = {k: [] for k in OUTPUTS}
for i in range(0, audio_original.shape[0], HOP_SIZE):
    window = audio_original[i : i + AUDIO_N_SAMPLES]
    if len(window) < AUDIO_N_SAMPLES:
        window = np.pad(window, pad_width=[[0, AUDIO_N_SAMPLES - len(window)]])
    batch = np.expand_dims(np.expand_dims(window, axis=-1), axis=0).astype(np.float32)
    results = session.run(list(OUTPUTS.values()), {session.get_inputs()[0].name: batch})
    for key, value in zip(OUTPUTS, results):
        output[key].append(value)

shapes = {}
for key in OUTPUTS:
    stacked = np.concatenate(output[key])
    n_olap = int(0.5 * N_OVERLAPPING_FRAMES)
    stacked = stacked[:, n_olap:-n_olap, :]
    n_frames = int(np.floor(original_length * (ANNOTATIONS_FPS / AUDIO_SAMPLE_RATE)))
    unwrapped = stacked.reshape(stacked.shape[0] * stacked.shape[1], stacked.shape[2])[:n_frames, :]
    np.ascontiguousarray(unwrapped, dtype="<f4").tofile(f"{out_dir}/{key}.f32")
    shapes[key] = list(unwrapped.shape)
print(json.dumps(shapes))
