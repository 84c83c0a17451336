"""The steps of ``scripts/prepare_data.py``, one module per job.

common        logging, wheel reading, ``*.partial``/commit helpers, hashing, the wheel table
faces         CelebA 64x64 faces and the Olivetti faces (with a joblib pickle reader)
people        every frame of the pose demo videos (ffmpeg) + manifest.json
torch_pickle  torch checkpoint / TorchScript reader without torch, safetensors writer
nets          MobileNetV2 and FID InceptionV3 conversions to safetensors
tflite_flatbuffer  TFLite model reader without TensorFlow (minimal FlatBuffers decoder)
detector      MediaPipe's full-range BlazeFace face detector -> safetensors + JSON op graph
photos        real photos with faces from registry packages + manifest.json
samples       the few images copied to assets/samples
checksums     data/CHECKSUMS and the file counts
"""
