"""Runs an ONNX model with onnxruntime, the reference runtime, on one float32
input read from a raw little-endian file, and writes each output, in the
graph's order, as raw little-endian float32 to OUT_DIR/<index>.f32, with
the shapes on stdout as JSON. For inference/tests/basic_pitch_onnx.rs.

Usage: onnx_reference.py MODEL INPUT.f32 SHAPE_JSON OUT_DIR
"""

import json
import sys

import numpy as np
import onnxruntime

model, input_path, shape, out_dir = sys.argv[1:5]
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
data = np.fromfile(input_path, dtype="<f4").reshape(json.loads(shape))
outputs = session.run(None, {session.get_inputs()[0].name: data})
shapes = []
for index, output in enumerate(outputs):
    np.ascontiguousarray(output, dtype="<f4").tofile(f"{out_dir}/{index}.f32")
    shapes.append(list(output.shape))
print(json.dumps({"names": [o.name for o in session.get_outputs()], "shapes": shapes}))
