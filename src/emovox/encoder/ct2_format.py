"""Reader for CTranslate2 ``model.bin`` files.

The format is a small header followed by named tensors::

    uint32 binary_version
    string spec_name, uint32 spec_revision          (binary_version >= 2)
    uint32 n_variables
    n_variables x { string name, uint8 rank, uint32 dims[rank],
                    uint8 dtype_id, uint32 n_bytes, bytes data }
    uint32 n_aliases, n_aliases x { string alias, string target }   (binary_version >= 3)

where ``string`` is a uint16 byte length (including a trailing NUL) followed by the bytes.
Tensors are returned as read-only numpy views into a memory map: nothing is copied until used.

Examples:
    >>> import io, struct, numpy as np
    >>> def s(x):
    ...     b = x.encode() + b"\\0"
    ...     return struct.pack("H", len(b)) + b
    >>> arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> blob = (struct.pack("I", 6) + s("Demo") + struct.pack("I", 1) + struct.pack("I", 1)
    ...         + s("w") + struct.pack("B", 2) + struct.pack("II", 2, 3) + struct.pack("B", 0)
    ...         + struct.pack("I", arr.nbytes) + arr.tobytes() + struct.pack("I", 0))
    >>> model = parse_ct2(blob)
    >>> model.spec_name, model.tensors["w"].shape
    ('Demo', (2, 3))
"""

from __future__ import annotations

import dataclasses
import os
import struct

import numpy as np

from emovox.errors import ModelError

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # None: bfloat16


@dataclasses.dataclass
class CT2Model:
    """The contents of a CTranslate2 model.bin: spec name, revision and tensors by name."""

    binary_version: int
    spec_name: str
    spec_revision: int
    tensors: dict[str, np.ndarray]
    aliases: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        """Return a tensor by name, following aliases."""
        name = self.aliases.get(name, name)
        try:
            return self.tensors[name]
        except KeyError:
            raise ModelError(f"tensor {name!r} not found in CTranslate2 model") from None


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def parse_ct2(buffer: bytes | memoryview | np.ndarray) -> CT2Model:
    """Parse a CTranslate2 model.bin held in memory (or memory-mapped)."""
    buf = np.frombuffer(buffer, dtype=np.uint8) if not isinstance(buffer, np.ndarray) else buffer
    view = memoryview(buf)
    pos = 0

    def read(fmt: str):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(view):
            raise ModelError("CTranslate2 model file is truncated")
        out = struct.unpack_from(fmt, view, pos)
        pos += size
        return out if len(out) > 1 else out[0]

    def read_string() -> str:
        nonlocal pos
        length = read("H")
        text = bytes(view[pos : pos + length - 1]).decode("utf-8")
        pos += length
        return text

    version = read("I")
    if version < 5 or version > 6:
        raise ModelError(f"unsupported CTranslate2 binary version {version} (expected 5 or 6)")
    spec_name, revision = read_string(), read("I")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(read("I")):
        name = read_string()
        rank = read("B")
        dims = [read("I") for _ in range(rank)]
        dtype_id, n_bytes = read("B"), read("I")
        if dtype_id >= len(_DTYPES):
            raise ModelError(f"unknown dtype id {dtype_id} for tensor {name!r}")
        if pos + n_bytes > len(buf):
            raise ModelError("CTranslate2 model file is truncated")
        raw = buf[pos : pos + n_bytes]
        pos += n_bytes
        dtype = _DTYPES[dtype_id]
        arr = _bf16_to_f32(raw) if dtype is None else raw.view(dtype)
        tensors[name] = arr.reshape(dims)
    aliases = {}
    for _ in range(read("I")):
        alias = read_string()
        aliases[alias] = read_string()
    return CT2Model(version, spec_name, revision, tensors, aliases)


def read_ct2(path: str | os.PathLike) -> CT2Model:
    """Memory-map and parse a CTranslate2 model.bin file (or a directory holding one)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "model.bin")
    if not os.path.isfile(path):
        raise ModelError(f"CTranslate2 model file not found: {path}")
    return parse_ct2(np.memmap(path, dtype=np.uint8, mode="r"))
