"""Tutorial 01 in quick mode reproduces its claims: the similarity loss separates the classes."""

import pytest


@pytest.fixture(scope="module")
def tutorial(load_tutorial):
    return load_tutorial("01_spike_similarity")


@pytest.fixture(scope="module")
def result(tutorial):
    return tutorial.main(quick=True)


def test_similarity_training_separates_classes(result):
    assert result["loss_after"] < 0.1 * result["loss_before"]
    assert result["between_before"] > 0.5  # before training every output looks alike
    assert result["between_after"] < 0.1  # after: different classes nearly orthogonal
    assert result["within_after"] > 0.6
    assert result["nearest_mean_accuracy"] >= 0.95


def test_tet_and_time_mean_classifiers_learn(result):
    assert result["tet_accuracy"] > 0.6 and result["sdt_accuracy"] > 0.6  # chance is 0.25


def test_figure_written(tutorial, result):
    assert (tutorial.FIGURES / "01_spike_similarity.png").stat().st_size > 10_000
