import numpy as np
import pytest

from tracing.data import Dataset, dataset_from_records
from tracing.evaluation import auc, metrics, split_learners
from tracing.formats import FormatError, read_records


def test_records_are_grouped_by_learner_and_sorted_in_time():
    data = dataset_from_records([("b", "i1", 1, 5.0), ("a", "i2", 0, 9.0), ("a", "i1", 1, 3.0)])
    assert data.learner_ids == ("a", "b")
    assert data.learner.tolist() == [0, 0, 1]
    assert data.timestamp.tolist() == [3.0, 9.0, 5.0]
    assert data.offsets.tolist() == [0, 2, 3]


def test_subset_and_truncate_keep_sequences_intact(dbe_slice):
    part = dbe_slice.subset([3, 1])
    assert part.n_learners == 2
    np.testing.assert_array_equal(part.item[part.rows(0)], dbe_slice.item[dbe_slice.rows(3)])
    short = dbe_slice.truncate(np.full(dbe_slice.n_learners, 4))
    assert np.all(short.lengths == np.minimum(dbe_slice.lengths, 4))


def test_unsorted_learners_are_rejected():
    with pytest.raises(ValueError, match="grouped"):
        Dataset(
            learner=np.array([1, 0]),
            item=np.array([0, 0]),
            correct=np.array([1.0, 0.0]),
            timestamp=np.array([0.0, 1.0]),
            q_matrix=np.ones((1, 1), bool),
            item_ids=("i",),
            skill_ids=("s",),
            learner_ids=("a", "b"),
        )


def test_split_is_by_learner_and_reproducible(dbe_slice):
    train, test = split_learners(dbe_slice, test_fraction=0.25, seed=3)
    again_train, again_test = split_learners(dbe_slice, test_fraction=0.25, seed=3)
    assert set(train.learner_ids).isdisjoint(test.learner_ids)
    assert train.n_learners + test.n_learners == dbe_slice.n_learners
    assert test.learner_ids == again_test.learner_ids
    assert train.n_rows + test.n_rows == dbe_slice.n_rows


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg)
    )
    assert auc(labels, scores) == pytest.approx(pairwise)


def test_metrics_of_a_perfect_predictor():
    result = metrics(np.array([0, 1, 1, 0]), np.array([0.0, 1.0, 1.0, 0.0]))
    assert result["auc"] == 1.0 and result["accuracy"] == 1.0 and result["rmse"] < 1e-6


def test_dkvmn_reader_reports_the_line_at_fault(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("3\n1,2,3\n1,0\n")
    with pytest.raises(FormatError) as error:
        list(read_records(path, "dkvmn"))
    assert error.value.line == 1 and "length 3" in error.value.reason


def test_correct_out_of_range_is_rejected(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(
        "learner,item,skill,correct,timestamp\nu1,q1,s1,1,2026-01-01T00:00:00Z\nu1,q2,s1,2,2026-01-01T00:01:00Z\n"
    )
    with pytest.raises(FormatError) as error:
        list(read_records(path, "csv"))
    assert error.value.line == 3 and "[0, 1]" in error.value.reason


def test_dbe_reader_attaches_original_ids_and_knowledge_components(dbe_slice):
    assert all(item.startswith("q") for item in dbe_slice.item_ids)
    assert dbe_slice.q_matrix.sum(axis=1).max() > 1  # some questions test several KCs
    assert dbe_slice.has_time and np.all(np.diff(dbe_slice.timestamp[dbe_slice.rows(0)]) >= 0)
