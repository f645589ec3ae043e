"""Write a copy of a model directory with its heads stored in another dtype (e.g. float16: half the file).

The heads, profile heads, temperatures, labels, feature settings and training record are carried
over unchanged; only ``heads.safetensors``'s tensors are rounded (``heads_dtype`` in the copy's
``config.json``). A model trained with ``emovox train --heads-dtype float16`` is the same as one
trained in float32 and resaved here.

    python scripts/resave_heads.py runs/folds/turev runs/folds/turev-f16 --heads-dtype float16
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emovox.training.checkpoint import STORAGE_DTYPES, load_model_files, save_ensemble


def resave(source: Path, target: Path, heads_dtype: str) -> Path:
    """Copy the model at ``source`` to ``target`` with its heads stored as ``heads_dtype``."""
    if source.resolve() == target.resolve():
        raise ValueError("write the copy to another directory")
    bundle = load_model_files(source)
    if bundle.tuned is not None:
        raise ValueError(f"{source}: models with a tuned encoder are not supported")
    return save_ensemble(target, bundle.ensemble(), bundle.features, training=bundle.config.get("training"),
                         heads_dtype=heads_dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--heads-dtype", choices=sorted(STORAGE_DTYPES), default="float16")
    args = parser.parse_args()
    print(resave(args.source, args.target, args.heads_dtype))


if __name__ == "__main__":
    main()
