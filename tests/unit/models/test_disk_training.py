"""Training from memory-mapped shards on disk: the shards, the batches, the choice of path and a run trained so."""

import dataclasses

import numpy as np
import pytest
import torch

from recexp.data.source import DataSource
from recexp.dataset import SAMPLE_WEIGHT
from recexp.errors import InvalidParameterError, JobError
from recexp.jobs import execute
from recexp.memory import memory_limit
from recexp.models import MLP, LightGBM, TrainConfig, evaluate, to_tensors, train
from recexp.models.shards import ShardBatches, shards_from_parquet, tensor_bytes, write_shards
from recexp.models.trainer import trains_from_disk
from recexp.runs import FINISHED, SQLiteRunStore
from recexp.spec import RunSpec
from recexp.strategies import get_strategy

QUICK = TrainConfig(epochs=2, batch_size=256, learning_rate=5e-3, patience=None, device="cpu")


@pytest.fixture(scope="module")
def parts(behavior_data):
    dataset, split = behavior_data
    return dataset.subset(split.train), dataset.subset(split.valid), dataset.subset(split.test)


@pytest.fixture(scope="module")
def shards(parts, tmp_path_factory):
    """The training split written in shards of 1,000 rows (several shards, so buffers and shard order matter)."""
    return write_shards(parts[0], tmp_path_factory.mktemp("shards"), rows_per_shard=1000)


def test_shards_hold_the_trainers_tensors_row_for_row(parts, shards):
    train_set = parts[0]
    expected = to_tensors(train_set)
    assert len(shards) == len(train_set) and len(shards.paths) == -(-len(train_set) // 1000) > 2
    arrays = [shards.read(i) for i in range(len(shards.paths))]
    rows = np.concatenate([a.rows for a in arrays])
    np.testing.assert_array_equal(rows, np.arange(len(train_set)))
    np.testing.assert_array_equal(np.concatenate([a.numeric for a in arrays]), expected.inputs.numeric.numpy())
    np.testing.assert_array_equal(np.concatenate([a.categorical for a in arrays]), expected.inputs.categorical.numpy())
    np.testing.assert_array_equal(np.concatenate([a.sequence for a in arrays]),
                                  expected.inputs.sequence.numpy().reshape(len(train_set), -1))
    np.testing.assert_array_equal(np.concatenate([a.labels for a in arrays]), expected.labels.numpy())
    assert list(shards.class_counts) == list(np.bincount(train_set.y, minlength=train_set.schema.n_classes))
    assert not shards.weighted
    assert arrays[0].sequence.dtype.itemsize < 8                      # stored narrow, widened per batch


def test_an_epoch_visits_every_row_once_in_an_order_fixed_by_seed_and_epoch(parts, shards):
    train_set = parts[0]
    batches = ShardBatches(shards, batch_size=300, seed=3, buffer_shards=2)
    first = [b for b in batches.epoch(1)]
    rows = torch.cat([b.rows for b in first]).numpy()
    assert sorted(rows.tolist()) == list(range(len(train_set)))
    assert not np.array_equal(rows, np.arange(len(train_set)))
    again = torch.cat([b.rows for b in batches.epoch(1)]).numpy()
    other = torch.cat([b.rows for b in batches.epoch(2)]).numpy()
    np.testing.assert_array_equal(rows, again)
    assert not np.array_equal(rows, other)
    batch = first[0]                                                    # each batch's rows carry their own values
    expected = to_tensors(train_set)
    np.testing.assert_array_equal(batch.labels.numpy(), expected.labels[batch.rows].numpy())
    np.testing.assert_array_equal(batch.inputs.sequence.numpy(), expected.inputs.sequence[batch.rows].numpy())
    assert batch.inputs.sequence.dtype == torch.int64 and batch.inputs.categorical.dtype == torch.int64


def test_a_shard_that_cannot_be_read_fails_the_epoch_where_it_is_needed(parts, tmp_path):
    broken = write_shards(parts[0], tmp_path, rows_per_shard=2000)
    broken.paths[-1].write_bytes(b"not arrow")
    with pytest.raises(Exception, match="(?i)arrow|invalid|file"):
        for _ in ShardBatches(broken, batch_size=256, seed=0).epoch(1):
            pass


def test_training_from_disk_learns_as_well_as_from_memory_and_keeps_the_result_semantics(parts, tmp_path):
    train_set, valid_set, test_set = parts
    memory = train(MLP(), train_set, valid_set, dataclasses.replace(QUICK, train_from="memory"))
    disk = train(MLP(), train_set, valid_set, dataclasses.replace(QUICK, train_from="disk"), scratch=tmp_path / "s")
    assert (memory.trained_from, disk.trained_from) == ("memory", "disk")
    assert disk.sample_stats is None and memory.sample_stats is not None
    assert disk.train_rows == memory.train_rows and disk.valid_rows == memory.valid_rows
    assert list(disk.history.columns) == list(memory.history.columns) and len(disk.history) == 2
    assert not (tmp_path / "s").exists()                               # the scratch shards are removed
    memory_loss, _ = evaluate(memory.module, test_set)
    disk_loss, proba = evaluate(disk.module, test_set)
    assert proba.shape == (len(test_set), train_set.schema.n_classes)
    assert disk_loss < memory.history["valid_loss"].iloc[0] * 1.5
    assert disk_loss == pytest.approx(memory_loss, rel=0.1)            # another shuffle, the same quality


def test_auto_trains_from_disk_past_the_memory_setting(parts, monkeypatch):
    train_set, valid_set, _ = parts
    bigger = train_set.subset(np.tile(np.arange(len(train_set)), 3))     # ~3 MB of tensors; the split ~1 MB
    config = dataclasses.replace(QUICK, epochs=1)
    assert not trains_from_disk(bigger, config)                           # half this machine's memory
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "2MB")
    assert tensor_bytes(train_set) < memory_limit() < tensor_bytes(bigger)
    assert not trains_from_disk(train_set, config)
    assert trains_from_disk(bigger, config) and not trains_from_disk(bigger, dataclasses.replace(
        config, train_from="memory"))
    assert train(MLP(), bigger, valid_set, config).trained_from == "disk"
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "lots")
    with pytest.raises(InvalidParameterError, match="RECEXP_MEMORY_LIMIT must be a memory size"):
        memory_limit()


def test_row_weights_and_the_weighted_loss_work_from_disk(parts, tmp_path):
    train_set, valid_set, _ = parts
    weights = np.where(train_set.y == 0, 0.0, 1.0).astype(np.float32)      # the majority class counts for nothing
    weighted = dataclasses.replace(train_set, frame=train_set.frame.assign(**{SAMPLE_WEIGHT: weights}))
    assert write_shards(weighted, tmp_path / "w").weighted
    result = train(MLP(), weighted, valid_set, dataclasses.replace(QUICK, train_from="disk", loss="weighted"))
    _, proba = evaluate(result.module, valid_set)
    assert (proba.argmax(axis=1) != 0).mean() > 0.5                       # it learned to avoid class 0


def test_boosted_trees_and_carving_refuse_disk_training_with_a_sentence(parts, shards):
    train_set, valid_set, _ = parts
    with pytest.raises(InvalidParameterError, match="cannot train from disk"):
        train(LightGBM(), train_set, valid_set, dataclasses.replace(QUICK, train_from="disk"))
    with pytest.raises(InvalidParameterError, match="needs a validation set"):
        train(MLP(), shards, None, QUICK)
    with pytest.raises(InvalidParameterError, match="train_from"):
        TrainConfig(train_from="cloud").validate()


def test_whole_data_strategies_refuse_a_split_past_the_memory_setting_naming_the_sampling_options(parts, monkeypatch):
    train_set = parts[0]
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "1MB")
    for name in ("smote", "random_over", "gaussian_copula"):
        with pytest.raises(InvalidParameterError, match="Sample users or down-sample negatives when building"):
            get_strategy(name).apply(train_set, seed=0)
    assert len(get_strategy("class_weights").apply(train_set, seed=0).dataset) == len(train_set)


def test_a_parquet_training_split_becomes_shards_one_batch_at_a_time_and_trains(parts, tmp_path):
    train_set, valid_set, _ = parts
    half = len(train_set) // 2
    (tmp_path / "split").mkdir()
    train_set.frame.iloc[:half].to_parquet(tmp_path / "split" / "part-0.parquet", index=False)
    train_set.frame.iloc[half:].to_parquet(tmp_path / "split" / "part-1.parquet", index=False)
    shards = shards_from_parquet(tmp_path / "split", train_set.schema, tmp_path / "shards", rows_per_shard=1500)
    assert len(shards) == len(train_set) and max(shards.rows) <= 1500
    arrays = [shards.read(i) for i in range(len(shards.paths))]
    expected = to_tensors(train_set)
    np.testing.assert_array_equal(np.concatenate([a.rows for a in arrays]), np.arange(len(train_set)))
    np.testing.assert_array_equal(np.concatenate([a.sequence for a in arrays]),
                                  expected.inputs.sequence.numpy().reshape(len(train_set), -1))
    result = train(MLP(), shards, valid_set, QUICK)
    assert result.trained_from == "disk" and result.train_rows == len(train_set)


def test_a_run_trained_from_disk_stores_the_same_results_as_one_from_memory(taobao_head):
    store = SQLiteRunStore.open()
    experiment = store.create_experiment("disk")
    base = RunSpec(source=DataSource(str(taobao_head)).to_dict(), task="behavior", task_params={"sequence_length": 5},
                   model="mlp", train={"epochs": 1, "batch_size": 256, "device": "cpu"})
    runs = {}
    for where in ("memory", "disk"):
        spec = dataclasses.replace(base, train={**base.train, "train_from": where})
        runs[where] = store.create_run(experiment.id, spec.to_dict(), status="running").id
        execute(spec, store, runs[where])
    memory, disk = (store.get_run(runs[w]) for w in ("memory", "disk"))
    assert memory.status == disk.status == FINISHED
    assert (memory.info["trained_from"], disk.info["trained_from"]) == ("memory", "disk")
    assert "per-row training statistics were not kept" in disk.info["trained_from_note"]
    assert set(disk.metrics) == set(memory.metrics)
    for name in ("predictions", "valid_predictions"):
        a, b = store.read_table(runs["memory"], name), store.read_table(runs["disk"], name)
        assert a["row"].tolist() == b["row"].tolist() and list(a.columns) == list(b.columns)
    assert not (store.artifact_dir(runs["disk"]) / "shards").exists()
    with pytest.raises(JobError, match="sample_stats"):
        store.read_table(runs["disk"], "sample_stats")
