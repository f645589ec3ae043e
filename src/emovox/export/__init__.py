"""Export a model to ONNX (:mod:`.onnx`) and quantize it to int8 behind an accuracy gate
(:mod:`.quantize`); :mod:`emovox.runtime` runs the result without torch."""
