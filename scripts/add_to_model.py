"""Add to a trained model directory what ``emovox train --prosody-weight`` / ``--profile-spread-power`` add.

The heads, profile heads and everything else stay as they are, so single clips predict as before. From the
corpora given (those the model was trained on; their features from the caches):

- ``--prosody-weight W``: a prosody head fitted on the clips' eGeMAPS features, each corpus standardised by
  its own statistics (``prosody.safetensors``; read under ``emovox profile --prosody`` profiles,
  :mod:`emovox.training.prosody`);
- ``--profile-spread-power P``: the within-corpus spread of the model's pooled features, which profiles
  built afterwards scale a domain's spread toward (``profile_spread.safetensors``,
  :mod:`emovox.training.profile_spread`).

Each writes its file and its entry in ``config.json``. The default model v6.4 is v6.3's heads with the
prosody head added, v6.5 is v6.4 with the spread added:

    python scripts/add_to_model.py src/emovox/models/default ravdess:../shared/corpora/ravdess \\
        nemo:../shared/corpora/nemo turev:../shared/corpora/turev tess:$E/tess koetts:$E/koetts \\
        emospeech:$E/emospeech --profile-spread-power 0.5 --name emovox-default-v6.5

(v6.4's head was added by this script's predecessor, ``scripts/add_prosody_head.py``, which ``--prosody-weight
0.1 --name emovox-default-v6.4`` replaces; its command is in ``config.json`` as it ran.)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from emovox.cli.train import load_corpora
from emovox.training.prosody import add_prosody_head
from emovox.training.train import add_profile_spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the model directory (changed in place)")
    parser.add_argument("corpora", nargs="+", help="corpus specs as emovox train takes them (name:path)")
    parser.add_argument("--prosody-weight", type=float, default=0.0, help="add a prosody head with this weight")
    parser.add_argument("--profile-spread-power", type=float, default=0.0,
                        help="add the training corpora's spread, which profiles scale toward with this power (0-1)")
    parser.add_argument("--name", default=None, help="a new model id (the training record's name)")
    args = parser.parse_args()
    if not args.prosody_weight and not args.profile_spread_power:
        parser.error("nothing to add: give --prosody-weight and/or --profile-spread-power")
    utterances = load_corpora(args.corpora, [])
    command = shlex.join(["python", *sys.argv])
    name = {"name": args.name} if args.name else {}
    if args.prosody_weight:
        head = add_prosody_head(args.model, utterances, weight=args.prosody_weight,
                                training={"prosody_command": command, **name})
        print(f"{args.model}: prosody head over {', '.join(head.labels)} from {len(utterances)} clips, "
              f"weight {head.weight:g}")
    if args.profile_spread_power:
        spread = add_profile_spread(args.model, utterances, power=args.profile_spread_power,
                                    training={"profile_spread_command": command, **name})
        print(f"{args.model}: profile spread {spread.spread.shape} from {len(utterances)} clips of "
              f"{len({u.corpus for u in utterances})} corpora, power {spread.power:g}")


if __name__ == "__main__":
    main()
