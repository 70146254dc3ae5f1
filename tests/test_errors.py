"""Bad input gets a ValueError/TypeError saying what was wrong and what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import MLP, trace_step


@pytest.mark.parametrize(
    "sizes,error,match",
    [
        ([3], ValueError, "at least two entries"),
        ([], ValueError, "at least two entries"),
        ([2, 0, 1], ValueError, r"layer_sizes\[1\] must be a positive integer, got 0"),
        ([2, -3], ValueError, "positive integer"),
        ([2, 2.5], TypeError, "positive integer"),
        ([2, True], TypeError, "positive integer"),
        ("22", TypeError, "list of integers"),
        (5, TypeError, "list of integers"),
    ],
)
def test_bad_layer_sizes(sizes, error, match):
    with pytest.raises(error, match=match):
        MLP(sizes)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'sigmod'.*sigmoid"):
        MLP([2, 1], activation="sigmod")
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*squared_error"):
        MLP([2, 1], loss="hinge")
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        MLP([2, 1], init="zeros")
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        MLP([2, 1], dtype="int8")


def test_loss_and_output_activation_must_fit():
    with pytest.raises(ValueError, match="cross_entropy.*needs output_activation='softmax'"):
        MLP([2, 3], loss="cross_entropy")
    with pytest.raises(ValueError, match="binary_cross_entropy.*'sigmoid'"):
        MLP([2, 1], output_activation="identity", loss="binary_cross_entropy")
    with pytest.raises(ValueError, match="softmax can only be used as output_activation"):
        MLP([2, 3, 1], activation="softmax", output_activation="sigmoid")


def test_wrong_number_of_columns():
    net = MLP([4, 2])
    with pytest.raises(ValueError, match=r"X has 3 column\(s\) but the network expects 4 input\(s\)"):
        net.forward(np.zeros((2, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_inputs(bad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        MLP([2, 1]).forward([[1.0, bad]])
    with pytest.raises(ValueError, match="targets contain NaN"):
        MLP([2, 1]).loss([[1.0, 2.0]], [[bad]])


def test_non_numeric_and_ragged_inputs():
    with pytest.raises(TypeError, match="X must be numeric"):
        MLP([2, 1]).forward([["a", "b"]])
    with pytest.raises(ValueError, match="rectangular"):
        MLP([2, 1]).forward([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match="X is empty"):
        MLP([2, 1]).forward(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="must be 2-D"):
        MLP([2, 1]).forward(np.zeros((2, 2, 2)))


def test_targets_that_do_not_fit():
    net = MLP([2, 2])
    net.forward([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match=r"targets have shape \(2, 3\) but the network has 2 output"):
        net.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Y has 3 examples but the last forward pass had 2"):
        net.backward(np.zeros((3, 2)))
    soft = MLP([2, 2], output_activation="softmax", loss="cross_entropy")
    with pytest.raises(ValueError, match=r"class indices must lie in 0..1"):
        soft.loss([[1.0, 2.0]], [2])


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="needs a forward"):
        MLP([2, 1]).backward([[1.0]])


@pytest.mark.parametrize("lr", [-0.1, float("nan"), "0.1", True])
def test_bad_learning_rate(lr):
    net = MLP([2, 1])
    with pytest.raises(ValueError, match="lr must be"):
        net.step(lr)
    with pytest.raises(ValueError, match="lr must be"):
        trace_step(net, [1.0, 2.0], [0.0], lr)


def test_set_weights_checks_shapes_and_values():
    net = MLP([2, 1])
    with pytest.raises(ValueError, match="expected 1 \\(W, b\\) pairs"):
        net.set_weights([])
    with pytest.raises(ValueError, match=r"expected W of shape \(2, 1\)"):
        net.set_weights([(np.zeros((3, 1)), np.zeros(1))])
    with pytest.raises(ValueError, match="NaN or infinite"):
        net.set_weights([(np.full((2, 1), np.nan), np.zeros(1))])


def test_trace_takes_one_example():
    with pytest.raises(ValueError, match="traces one example"):
        trace_step(MLP([2, 1]), np.zeros((2, 2)), [0.0], 0.1)
