"""tinyc as an onnx.backend.base.Backend: prepare() compiles for the `host` target, run() executes the
emitted C, so ONNX's own node tests exercise the whole flow.

tinyc is an ahead-of-time compiler: shapes, pads and quantization parameters must be known when it
compiles. A model that passes them as graph inputs (as ONNX's node tests do) is compiled at its first
run, with those inputs bound to the values given, and again whenever they change.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.base import Backend, BackendRep, namedtupledict

from .compiler import compile
from .errors import NeedsConstantError


def _bind(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The model with these graph inputs turned into initializers."""
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    kept = [i for i in bound.graph.input if i.name not in values]
    del bound.graph.input[:]
    bound.graph.input.extend(kept)
    bound.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in values.items())
    return bound


class TinycBackendRep(BackendRep):
    def __init__(self, model: onnx.ModelProto, target: str, sanitize: bool):
        self.model = model
        self.target = target
        self.sanitize = sanitize
        self.input_names = [i.name for i in model.graph.input
                            if i.name not in {t.name for t in model.graph.initializer}]
        self.bound_names: list[str] = []
        self._compiled = {}
        try:  # compile now when possible, so that prepare() reports what tinyc rejects
            self._compiled[()] = compile(model, target=target)
        except NeedsConstantError as e:
            if e.value not in self.input_names:
                raise
            self.bound_names.append(e.value)

    def _compile(self, feeds: dict):
        """The model compiled with the bound inputs' values from `feeds`, binding more as the compiler asks."""
        while True:
            values = {n: feeds[n] for n in self.bound_names}
            key = tuple((n, np.asarray(v).dtype.str, np.asarray(v).tobytes()) for n, v in values.items())
            if key in self._compiled:
                return self._compiled[key]
            try:
                compiled = compile(_bind(self.model, values), target=self.target)
            except NeedsConstantError as e:
                if e.value not in self.input_names or e.value in self.bound_names:
                    raise
                self.bound_names.append(e.value)
                continue
            self._compiled[key] = compiled
            return compiled

    def compiled_for(self, inputs):
        """(the CompiledModel these inputs run on, the inputs it takes at run time): run() without running,
        for callers that build many models into one executable."""
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            feeds = dict(zip(self.input_names, inputs))
        compiled = self._compile(feeds)
        return compiled, {n: v for n, v in feeds.items() if n in compiled.graph.inputs}

    def run(self, inputs, **kwargs):
        compiled, runtime = self.compiled_for(inputs)
        outputs = compiled.run(runtime, sanitize=self.sanitize)
        return namedtupledict("Outputs", list(outputs))(*outputs.values())


class TinycBackend(Backend):
    @classmethod
    def prepare(cls, model, device: str = "CPU", target: str = "host", sanitize: bool = False, **kwargs):
        super().prepare(model, device, **kwargs)
        return TinycBackendRep(model, target, sanitize)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = TinycBackend.prepare
run_model = TinycBackend.run_model
supports_device = TinycBackend.supports_device
