"""tinyc as an onnx.backend.base.Backend: prepare() compiles for the host CPU, run() executes the
emitted C, so ONNX's own node tests exercise the whole flow."""
from __future__ import annotations

from onnx.backend.base import Backend, BackendRep, namedtupledict

from .compiler import compile


class TinycBackendRep(BackendRep):
    def __init__(self, compiled, sanitize: bool = False):
        self.compiled = compiled
        self.sanitize = sanitize

    def run(self, inputs, **kwargs):
        names = self.compiled.graph.inputs
        if isinstance(inputs, dict):
            feeds = inputs
        else:
            inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            feeds = dict(zip(names, inputs))
        outputs = self.compiled.run(feeds, sanitize=self.sanitize)
        return namedtupledict("Outputs", list(outputs))(*outputs.values())


class TinycBackend(Backend):
    @classmethod
    def prepare(cls, model, device: str = "CPU", target: str = "cpu", sanitize: bool = False, **kwargs):
        super().prepare(model, device, **kwargs)
        return TinycBackendRep(compile(model, target=target), sanitize=sanitize)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = TinycBackend.prepare
run_model = TinycBackend.run_model
supports_device = TinycBackend.supports_device
