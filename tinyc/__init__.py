"""tinyc: deploy quantized neural networks on heterogeneous TinyML chips (reference: DIANA).

    import tinyc
    cm = tinyc.compile("model.onnx", target="cpu")
    outputs = cm.run({"input_1": x})
    cm.write("build/model")
"""
from . import targets
from .compiler import CompiledModel, compile
from .errors import (BadModelError, DoesNotFitError, InputError, TinycError, ToolchainError, UnsupportedError,
                     VerifyError)

__version__ = "0.1.0"

__all__ = ["compile", "CompiledModel", "targets", "TinycError", "BadModelError", "UnsupportedError",
           "DoesNotFitError", "InputError", "ToolchainError", "VerifyError"]
