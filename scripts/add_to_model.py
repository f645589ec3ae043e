"""Add to a trained model directory what `emovox train` adds after the heads (prosody, spread, linear heads).

The heads, profile heads and everything else stay as they are, so single clips predict as before. From the
corpora given (those the model was trained on; their features from the caches):

- ``--prosody-weight W``: a prosody head fitted on the clips' eGeMAPS features, each corpus standardised by
  its own statistics (``prosody.safetensors``; read under ``emovox profile --prosody`` profiles,
  :mod:`emovox.training.prosody`);
- ``--profile-spread-power P``: the within-corpus spread of the model's pooled features, which profiles
  built afterwards scale a domain's spread toward (``profile_spread.safetensors``,
  :mod:`emovox.training.profile_spread`);
- ``--linear-weight W``: a linear head over every encoder state, mixed into the heads' answer with weight W
  (``linear_head.safetensors``, :mod:`emovox.training.linear_head`); this one changes single clips. It is fitted
  on the clips encoded as the model's ``features`` say, or as the heads were trained where that differs
  (``--fit-silence-stride``, ``--fit-without-band``: v7's heads trained on the whole silence context as recorded);
  ``--linear-room-copies K`` fits it also on K copies of every clip heard in a simulated room (v7.5's head);
- ``--profile-linear-weight W``: a linear head beside the profile heads (each state's mean, every corpus moved
  to the mean of all), mixed into their answer with weight W where a profile is applied
  (``profile_linear_head.safetensors``); fitted on the same features as ``--linear-weight``'s.

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
import dataclasses
import shlex
import sys
from pathlib import Path

from emovox.cli.train import load_corpora
from emovox.features.extractor import FeatureExtractor
from emovox.training.checkpoint import load_model_files
from emovox.training.linear_head import STRENGTH
from emovox.training.prosody import add_prosody_head
from emovox.training.train import add_linear_head, add_profile_spread, load_features, room_copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the model directory (changed in place)")
    parser.add_argument("corpora", nargs="+", help="corpus specs as emovox train takes them (name:path)")
    parser.add_argument("--prosody-weight", type=float, default=0.0, help="add a prosody head with this weight")
    parser.add_argument("--profile-spread-power", type=float, default=0.0,
                        help="add the training corpora's spread, which profiles scale toward with this power (0-1)")
    parser.add_argument("--linear-weight", type=float, default=0.0, help="add a linear head with this weight (0-1)")
    parser.add_argument("--profile-linear-weight", type=float, default=0.0,
                        help="add a linear head beside the profile heads with this weight (0-1)")
    parser.add_argument("--linear-strength", type=float, default=STRENGTH, help="the linear heads' C")
    parser.add_argument("--linear-room-copies", type=int, default=0,
                        help="with --linear-weight: also fit it on this many copies of every clip in a simulated room")
    parser.add_argument("--fit-silence-stride", type=int, default=0,
                        help="fit the linear heads on clips encoded at this silence stride (default: the model's)")
    parser.add_argument("--fit-without-band", action="store_true",
                        help="fit the linear heads on clips as recorded, without the model's level band")
    parser.add_argument("--name", default=None, help="a new model id (the training record's name)")
    args = parser.parse_args()
    if not (args.prosody_weight or args.profile_spread_power or args.linear_weight or args.profile_linear_weight):
        parser.error("nothing to add: give --prosody-weight, --profile-spread-power, --linear-weight and/or "
                     "--profile-linear-weight")
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
    if not args.linear_weight and not args.profile_linear_weight:
        return
    settings = load_model_files(args.model).features
    fit = dataclasses.replace(settings, silence_stride=args.fit_silence_stride or settings.silence_stride,
                              level_band=None if args.fit_without_band else settings.level_band)
    extractor = FeatureExtractor.from_settings(fit)
    features = load_features(utterances, extractor)
    copies = room_copies(utterances, extractor, args.linear_room_copies) if args.linear_room_copies else None
    for key, weight, profile in (("linear_head", args.linear_weight, False),
                                 ("profile_linear_head", args.profile_linear_weight, True)):
        if weight:
            linear = add_linear_head(args.model, utterances, weight=weight, strength=args.linear_strength,
                                     features=features, profile=profile, copies=None if profile else copies,
                                     training={f"{key}_command": command, f"{key}_fitted_on": fit.to_dict(), **name})
            print(f"{args.model}: {key.replace('_', ' ')} {linear.shape} from {len(utterances)} clips, "
                  f"weight {linear.weight:g}, C {linear.strength:g}")


if __name__ == "__main__":
    main()
