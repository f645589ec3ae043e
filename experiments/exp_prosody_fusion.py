"""Does a prosody head (eGeMAPS, standardised by each domain's own statistics) add to v6.3's heads?

For each held-out corpus, v6.3's fold model (the experiments' fold cache, ``fold_models.py``) and a
prosody head fitted on the same training corpora (:func:`emovox.training.prosody.fit_prosody_head`)
are combined as the shipped code combines them (:meth:`ProsodyHead.fuse`), at several weights and
regularisation strengths, on the benchmark's profile halves (random half of every clip; a
70 %-neutral subset of it) and, with the prosody standardised by the training set's statistics, on
single clips. Every speaker tested is unseen; UA % over the four classes.

    python experiments/exp_prosody_fusion.py --weights 0,0.1,0.2,0.3,0.5 --C 0.01,0.1,1 --seeds 0,1

Found (2026-12-06; about 15 minutes once the features are cached): single clips lose at every weight
(the raw scale of pitch and loudness is the speaker's and the channel's: 56.3 -> 55.9-56.0 at 0.1,
47 at 0.5). Under a profile, weight 0.1 gained with both seed sets of halves and all three C (mean over
the six corpora +0.5 to +1.1 from random halves, +0.7 to +1.2 from 70 %-neutral ones) and was best or
tied in all six runs; 0.2 gained less, 0.3 came out level or below, 0.5 lost 3 to 4 points. With the
weight chosen for each held-out corpus on the other five (nested: the tested corpus chooses nothing),
between 0 and 0.1 the gain is +0.6 on average over the twelve runs (-0.3 to +1.2), among 0-0.3 -0.1.
Shipped in v6.4 as an opt-in head (``--prosody-weight 0.1``, C 0.1; read under ``emovox profile
--prosody`` profiles, which double a clip's time), measured by ``bench_generalisation.py --designs
all-mixed-level-d0.5-ph-e10-pr0.1``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from fold_models import bench, fold_ensembles, report

from emovox.features.prosody import cached_prosody_features, domain_statistics, standardise
from emovox.training.prosody import fit_prosody_head

DESIGN = "all-mixed-level-d0.5-ph-e10"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.5")
    parser.add_argument("--C", default="0.1", help="comma-separated inverse L2 strengths")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the profile halves")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_prosody_fusion.json"))
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    utts, X = bench.corpora_features(args, pooling=bench.DESIGNS[DESIGN].pooling)
    P = cached_prosody_features([u.path for u in utts])
    truth_all = [bench.collapse(u.label, "4class") for u in utts]
    rows: dict = {}
    for held, test, train_utts, idx, truth, ensemble in fold_ensembles(DESIGN, X, utts):
        train = ~test
        labels, corpora = [u.label for u in train_utts], [u.corpus for u in train_utts]
        corpus_rows = np.flatnonzero(test)
        Pc, Xc = P[corpus_rows], X[corpus_rows]
        names = [truth_all[i] for i in corpus_rows]
        row: dict = {}
        for C in args.C.split(","):
            head = fit_prosody_head(P[train], labels, corpora, ensemble.labels, C=float(C))
            single = ensemble.probabilities(X[idx])
            Z_single = standardise(P[idx], *domain_statistics(P[train]))  # no profile: the training set's scale
            for w in weights:
                fused = dataclasses.replace(head, weight=w).fuse(single, Z_single)
                row[f"C{C}_w{w:g}_single"] = bench.ua(truth, bench.four_class_decision(ensemble, fused))
            for seed in map(int, args.seeds.split(",")):
                profile, half, skewed = bench.halves(names, seed=seed)
                th = [names[i] for i in half]
                for name, archive in (("profile", profile), ("skewed", skewed)):
                    probs = bench.profiled_probabilities(ensemble, Xc[archive], Xc[half])
                    for w in weights:
                        fused = bench.with_prosody(dataclasses.replace(head, weight=w), Pc, archive, half, probs)
                        row[f"C{C}_w{w:g}_{name}_s{seed}"] = bench.ua(th, bench.four_class_decision(ensemble, fused))
        rows[held] = row
        print(held, " ".join(f"{k} {100 * v:.1f}" for k, v in row.items()), flush=True)
    report(rows, DESIGN, args.out)


if __name__ == "__main__":
    main()
