"""KServe v2 / Open Inference Protocol: types, tensor codecs (JSON and binary), errors."""
