"""edgecnn.metrics: the one implementation of the classification figures (train, evaluate, parity, bench)."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.metrics import class_probs, classification_metrics, top_k_accuracy


def test_sigmoid_head_becomes_two_columns_softmax_unchanged():
    assert class_probs(np.array([[0.25], [1.0]])).tolist() == [[0.75, 0.25], [0.0, 1.0]]
    soft = np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    assert np.array_equal(class_probs(soft), soft)


def test_figures_agree_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d"]
    targets = rng.integers(0, 3, 200)  # class "d" never occurs: macro F1 averages the classes present
    probs = rng.random((200, 4)).astype(np.float32)
    m = classification_metrics(targets, probs, labels, k=2)
    pred = probs.argmax(axis=1)
    p, r, f, s = sk.precision_recall_fscore_support(targets, pred, labels=range(4), zero_division=0)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(targets, pred))
    assert [m["per_class"][c]["precision"] for c in labels] == pytest.approx(p.tolist())
    assert [m["per_class"][c]["recall"] for c in labels] == pytest.approx(r.tolist())
    assert [m["per_class"][c]["f1"] for c in labels] == pytest.approx(f.tolist())
    assert [m["per_class"][c]["support"] for c in labels] == s.tolist()
    assert m["macro_f1"] == pytest.approx(float(np.mean(f[s > 0])))
    assert m["confusion"] == sk.confusion_matrix(targets, pred, labels=range(4)).tolist()
    assert m["topk"] == 2 and m["topk_accuracy"] == pytest.approx(sk.top_k_accuracy_score(targets, probs, k=2, labels=range(4)))


def test_top_k_is_clamped_and_empty_input_is_not_an_error():
    probs = np.array([[0.1, 0.9], [0.8, 0.2]])
    assert classification_metrics(np.array([1, 1]), probs, ["x", "y"], k=5)["topk"] == 2
    assert top_k_accuracy(probs, np.array([1, 1]), 1) == 0.5
    empty = classification_metrics(np.zeros(0, dtype=int), np.zeros((0, 2)), ["x", "y"], k=1)
    assert empty["accuracy"] == 0.0 and empty["confusion"] == [[0, 0], [0, 0]]


def test_macro_f1_ignores_classes_absent_from_the_split():
    """A perfect prediction on a split where one class has no image is a macro F1 of 1 (train and evaluate both
    report it through this implementation), not 2/3."""
    from edgecnn.training.evaluation import classification_report

    labels = ["a", "b", "c"]
    y = np.array([0, 0, 1, 1])
    probs = np.eye(3, dtype=np.float32)[y]
    report = classification_report(probs, y, labels, top_k=2)
    assert report["accuracy"] == 1.0
    assert report["macro_f1"] == 1.0 == classification_metrics(y, probs, labels, 2)["macro_f1"]
    assert report["per_class"]["c"]["support"] == 0
    # a wrong prediction INTO the absent class still costs the present classes
    probs2 = np.eye(3, dtype=np.float32)[[0, 2, 1, 1]]
    assert classification_report(probs2, y, labels, top_k=2)["macro_f1"] < 1.0
