"""A fitted scikit-learn logistic regression as one row of weights per label of a model.

The prosody head (:mod:`emovox.training.prosody`) and the linear head (:mod:`emovox.training.linear_head`)
are both multinomial logistic regressions fitted on the training clips' labels, which may lack some of the
model's. :func:`rows_for_labels` lays the fitted weights out over the model's labels: a two-class fit's single
row of log-odds becomes two rows with the same softmax, and a label no training clip had gets zero weights and
the intercept :data:`ABSENT`, so it never wins.

Examples:
    >>> from sklearn.linear_model import LogisticRegression
    >>> clf = LogisticRegression().fit(np.array([[0.0], [1.0], [0.1], [0.9]]), ["sad", "angry", "sad", "angry"])
    >>> coef, intercept = rows_for_labels(clf, ["neutral", "angry", "sad"])
    >>> coef.shape, float(intercept[0]), bool(coef[1, 0] > 0 > coef[2, 0])
    ((3, 1), -30.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ABSENT = -30.0  # intercept of a model label the training set had no clip of (it never wins)


def rows_for_labels(clf, model_labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(coef (len(model_labels), n_features), intercept (len(model_labels),))`` of a fitted multinomial
    ``clf`` (``classes_``, ``coef_``, ``intercept_``), in the order of ``model_labels``, float32."""
    classes = [str(k) for k in clf.classes_]
    W, b = clf.coef_, clf.intercept_
    if len(classes) == 2:  # one row for the second class's log-odds: the same softmax as (-z / 2, z / 2)
        W, b = np.stack([-W[0] / 2, W[0] / 2]), np.array([-b[0] / 2, b[0] / 2])
    coef = np.zeros((len(model_labels), W.shape[1]), np.float32)
    intercept = np.full(len(model_labels), ABSENT, np.float32)
    for j, label in enumerate(model_labels):
        if label in classes:
            k = classes.index(label)
            coef[j], intercept[j] = W[k], b[k]
    return coef, intercept
