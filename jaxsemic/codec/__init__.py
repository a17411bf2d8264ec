"""Inference-time codec: model directories, the .jsc bitstream, compress / decompress."""
