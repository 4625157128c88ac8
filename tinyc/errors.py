"""Errors raised by tinyc: one class per kind, each message names the file, the node and the reason.
Notes (TinycNote) are Python warnings: what tinyc decided for the user and carried on with."""
import warnings


class TinycError(Exception):
    """Base class: `str(err)` is the one-line diagnostic `<file>: <node>: <what and why>`."""

    def __init__(self, reason: str, *, file: str | None = None, node: str | None = None):
        self.reason = reason
        self.file = file
        self.node = node
        super().__init__(reason)

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.node) if p]
        text = ": ".join(parts + [self.reason])
        return text.replace("\r", "\\r").replace("\n", "\\n")  # one line even when a name holds a newline

    def located(self, file: str | None = None, node: str | None = None) -> "TinycError":
        """Fill in the location where the raiser did not know it (keeps what it did know)."""
        self.file = self.file or file
        self.node = self.node or node
        return self


class BadModelError(TinycError):
    """The input is not a valid ONNX model (not protobuf, truncated, fails the checker, bad graph)."""


class UnsupportedError(TinycError):
    """A valid model uses an op, attribute, dtype or shape that tinyc does not implement."""


class InputError(TinycError):
    """A request does not match the model: a missing or mistyped input, an unknown option."""


class NeedsConstantError(UnsupportedError):
    """A value the compiler must know (a shape, pads, a scale) is a run-time input of the model."""

    def __init__(self, reason: str, value: str, **where):
        super().__init__(reason, **where)
        self.value = value


class DoesNotFitError(TinycError):
    """The model or a layer does not fit the target's memories. `report`: the compile report of a model
    too big for the main memory (what takes the room), None for a layer that does not fit."""

    report: dict | None = None


class ToolchainError(TinycError):
    """A C compiler, emulator or simulator failed or is missing."""


class VerifyError(TinycError):
    """An IR invariant was broken: a bug in tinyc, never the user's model."""


class TinycNote(UserWarning):
    """Something tinyc decided on the user's behalf and went on (a batch bound to 1, random inputs):
    a Python warning, so a library caller sees it once and the CLI prints it as `tinyc: note: ...`."""


def note(reason: str, *, file: str | None = None, node: str | None = None) -> None:
    """Issue a TinycNote whose text reads like an error's: `<file>: <node>: <what>`."""
    warnings.warn(TinycNote(": ".join([p for p in (file, node) if p] + [reason])), stacklevel=3)
