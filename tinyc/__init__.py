"""tinyc: deploy quantized neural networks on heterogeneous TinyML chips (reference: DIANA).

    import tinyc
    cm = tinyc.compile("model.onnx", target="cpu")
    outputs = cm.run({"input": x})
    cm.write("build/model")
    q = tinyc.quantize(tinyc.zoo.build("kws", "float"), tinyc.zoo.sample("kws", 16), power_of_two=True)
"""
from . import targets, zoo
from .compiler import CompiledModel, compile
from .errors import (BadModelError, DoesNotFitError, InputError, TinycError, TinycNote, ToolchainError,
                     UnsupportedError, VerifyError)
from .quantizer import quantize

__version__ = "0.1.0"

__all__ = ["compile", "CompiledModel", "quantize", "targets", "zoo", "TinycError", "BadModelError",
           "UnsupportedError", "DoesNotFitError", "InputError", "ToolchainError", "VerifyError", "TinycNote"]
