"""Serving-side code: the folded student in numpy, ONNX / TorchScript exports, Faiss indexes and encoders."""
