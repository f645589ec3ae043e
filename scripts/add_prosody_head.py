"""Add a prosody head to a trained model directory, as ``emovox train --prosody-weight`` does after training.

The heads, profile heads and everything else in the model stay as they are; the prosody head is fitted
on the eGeMAPS features of the corpora given (those the model was trained on), each corpus standardised
by its own statistics, and written as ``prosody.safetensors`` with its entry in ``config.json``. The
default model v6.4 is v6.3's heads with this head added:

    python scripts/add_prosody_head.py src/emovox/models/default ravdess:../shared/corpora/ravdess \\
        nemo:../shared/corpora/nemo turev:../shared/corpora/turev tess:$E/tess koetts:$E/koetts \\
        emospeech:$E/emospeech --weight 0.1 --name emovox-default-v6.4
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from emovox.cli.train import load_corpora
from emovox.training.prosody import WEIGHT, add_prosody_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the model directory (changed in place)")
    parser.add_argument("corpora", nargs="+", help="corpus specs as emovox train takes them (name:path)")
    parser.add_argument("--weight", type=float, default=WEIGHT, help="the prosody head's share of the log-probabilities")
    parser.add_argument("--name", default=None, help="a new model id (the training record's name)")
    args = parser.parse_args()
    utterances = load_corpora(args.corpora, [])
    record = {"prosody_command": shlex.join(["python", *sys.argv]), **({"name": args.name} if args.name else {})}
    head = add_prosody_head(args.model, utterances, weight=args.weight, training=record)
    print(f"{args.model}: prosody head over {', '.join(head.labels)} from {len(utterances)} clips, weight {head.weight:g}")


if __name__ == "__main__":
    main()
