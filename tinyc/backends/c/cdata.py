"""C spellings of IR data: dtypes as C types, constants as exact C literals."""
from __future__ import annotations

import numpy as np

CTYPES = {"float32": "float", "int8": "int8_t", "uint8": "uint8_t", "int32": "int32_t", "int64": "int64_t"}
PER_LINE = 20


def c_literals(values, ctype: str) -> list[str]:
    """Exact C literals: floats with 9 significant digits (enough to round-trip float32)."""
    flat = np.asarray(values).reshape(-1)
    if ctype == "float":
        return [_float_literal(v) for v in flat.astype(np.float32).tolist()]
    if ctype == "int64_t":
        return [f"{v}LL" if v != -2 ** 63 else "(-9223372036854775807LL - 1)" for v in flat.tolist()]
    return [str(v) for v in flat.astype(np.int64).tolist()]


def _float_literal(v: float) -> str:
    if v != v:
        return "NAN"
    if v in (float("inf"), float("-inf")):
        return "INFINITY" if v > 0 else "-INFINITY"
    text = "%.9g" % v
    return (text if any(ch in text for ch in ".e") else text + ".0") + "f"


def c_rows(items: list[str], indent: str = "    ") -> str:
    return ",\n".join(indent + ", ".join(items[i:i + PER_LINE]) for i in range(0, len(items), PER_LINE))


def c_string(text: str) -> str:
    """A string literal's body: printable ASCII as is; other UTF-8 bytes, quotes, backslashes and the
    trigraph-prone '?' as three-digit octal escapes (which never absorb a following digit)."""
    return "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\?' else f"\\{b:03o}" for b in text.encode())
