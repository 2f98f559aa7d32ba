"""The data layer on the real public files and on small hand-made files in the other public layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from embedlab import data
from embedlab.errors import DataError


def local(root: Path) -> data.Source:
    return data.Source("local", root)


NLI_HEADER = "pairID,sentence1,sentence2,label\n"


def dev_pool(root: Path, **files: str) -> Path:
    """The four dev/test files of the local NLI pool, one labelled row each unless ``files`` gives a file's text."""
    for names in data.NLI_DEV_FILES:
        name = names[0]
        text = files.get(name.removesuffix(".csv").replace(".", "_"), NLI_HEADER + f"0,{name} P.,{name} H.,neutral\n")
        (root / name).write_text(text)
    return root


# ---------------------------------------------------------------------------------------------- real data


def test_stsb_validation_matches_glue_row_for_row(data_dir):
    ds = data.load_stsb(local(data_dir), "validation")
    assert ds.column_names == ["sentence1", "sentence2", "score"]
    assert len(ds) == 1500
    assert ds[0] == {
        "sentence1": "A man with a hard hat is dancing.",
        "sentence2": "A man wearing a hard hat is dancing.",
        "score": 5.0,
    }
    # sts-dev.csv split by hand: the score is the 5th tab-separated field of every line
    lines = (data_dir / "stsb" / "sts-dev.csv").read_text(encoding="utf-8").splitlines()
    assert ds["score"] == [float(line.split("\t")[4]) for line in lines]


def test_stsb_test_and_sickr_sizes(data_dir):
    assert len(data.load_stsb(local(data_dir), "test")) == 1379
    sick = data.load_sickr(local(data_dir))
    assert len(sick) == 4906  # SemEval-2014 test split of SICK.txt
    rows = [line.split("\t") for line in (data_dir / "sick" / "SICK.txt").read_text(encoding="utf-8").splitlines()]
    assert rows[0][4] == "relatedness_score" and rows[0][-1] == "SemEval_set"
    assert sick["score"] == [float(r[4]) for r in rows[1:] if r[-1].strip() == "TEST"]


def test_local_nli_pool_is_mnli_and_snli_dev_test(data_dir):
    ds, info = data.load_nli(local(data_dir), 39313, seed=42)
    assert ds.column_names == ["premise", "hypothesis", "label"]
    assert info["kind"] == "dev_test_pool" and info["pool_rows"] == 39313
    assert [f["rows"] for f in info["files"]] == [9815, 9832, 9842, 9824]
    assert [f["dropped_no_gold_label"] for f in info["files"]] == [0, 0, 158, 176]
    assert set(ds["label"]) == {0, 1, 2}
    # The shuffle is seeded: same seed, same order; another seed, another order.
    again, _ = data.load_nli(local(data_dir), 50, seed=42)
    other, _ = data.load_nli(local(data_dir), 50, seed=7)
    assert again["premise"] == ds["premise"][:50] and other["premise"] != again["premise"]


def test_nli_label_mapping_uses_glue_ids(tmp_path):
    matched = (
        NLI_HEADER + "1e,A cat sleeps.,An animal sleeps.,entailment\n"
        "2n,A cat sleeps.,A black cat sleeps.,neutral\n"
        "3c,A cat sleeps.,A cat runs.,contradiction\n"
        '4x,"A ""quoted"", comma.",Something.,-\n'
    )
    ds, info = data.load_nli(local(dev_pool(tmp_path, multinli_1_0_dev_matched=matched)), 6)
    by_hyp = dict(zip(ds["hypothesis"], ds["label"], strict=True))
    assert {h: by_hyp[h] for h in ("An animal sleeps.", "A black cat sleeps.", "A cat runs.")} == {
        "An animal sleeps.": 0,
        "A black cat sleeps.": 1,
        "A cat runs.": 2,
    }
    assert [f["dropped_no_gold_label"] for f in info["files"]] == [1, 0, 0, 0]
    assert [f["rows"] for f in info["files"]] == [3, 1, 1, 1]


def test_glue_tsv_and_jsonl_layouts(data_dir, tmp_path):
    (tmp_path / "STS-B").mkdir()
    shutil.copy(data_dir / "glue-stsb" / "dev.tsv", tmp_path / "STS-B" / "dev.tsv")
    glue = data.load_stsb(local(tmp_path), "validation")
    assert glue.to_dict() == data.load_stsb(local(data_dir), "validation").to_dict()
    (tmp_path / "multinli_1.0_train.jsonl").write_text(
        "\n".join(
            json.dumps({"gold_label": g, "sentence1": "P.", "sentence2": f"H{i}."})
            for i, g in enumerate(["entailment", "contradiction", "-"])
        )
        + "\n"
    )
    ds, info = data.load_nli(local(tmp_path), 2)
    assert info["kind"] == "mnli_train" and ds["label"] == [0, 2] and not info["shuffled"]


def test_tsdae_sentences_are_deduplicated_premises_and_hypotheses():
    from datasets import Dataset

    nli = Dataset.from_dict({"premise": ["a", "a", "b"], "hypothesis": ["x", "y", "a"], "label": [0, 1, 2]})
    assert data.nli_sentences(nli, 3) == ["a", "x", "y", "b"]
    assert data.nli_sentences(nli, 1) == ["a", "x"]


# ---------------------------------------------------------------------------------------------- bad input


def test_hub_unreachable_without_local_folder_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data.hub_reachable.cache_clear()
    with pytest.raises(DataError, match="Hub is unreachable") as err:
        data.resolve_source("auto", None)
    assert "EMBEDLAB_DATA_DIR" in str(err.value)
    data.hub_reachable.cache_clear()


def test_missing_folder_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.resolve_source("local", tmp_path / "nope")
    with pytest.raises(DataError, match="no STS-B validation file"):
        data.load_stsb(local(tmp_path), "validation")
    with pytest.raises(DataError, match="no NLI files"):
        data.load_nli(local(tmp_path), 10)
    with pytest.raises(DataError, match="no SICK file"):
        data.load_sickr(local(tmp_path))


def test_wrong_columns(tmp_path):
    dev_pool(tmp_path, multinli_1_0_dev_matched="id,text,target\n1,a,b\n")
    with pytest.raises(DataError, match="lacks the NLI columns"):
        data.load_nli(local(tmp_path), 1)
    (tmp_path / "STS-B").mkdir()
    (tmp_path / "STS-B" / "dev.tsv").write_text("index\tsentence1\tsentence2\n0\ta\tb\n")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['score'\]"):
        data.load_stsb(local(tmp_path), "validation")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("g\tf\t2012\t1\t7.5\tA.\tB.", "outside 0.0-5.0"),
        ("g\tf\t2012\t1\thigh\tA.\tB.", "is not a number"),
        ("g\tf\t2012\t1\t2.0\t \tB.", "empty sentence1"),
        ("g\tf\t2012\t1\t2.0", "expected at least 7"),
    ],
)
def test_bad_sts_rows_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "sts-dev.csv"
    path.write_text("g\tf\t2012\t0\t1.0\tA.\tB.\n" + line + "\n")
    with pytest.raises(DataError, match=message) as err:
        data.load_stsb(local(tmp_path), "validation")
    assert f"{path}: line 2" in str(err.value)


def test_non_utf8_and_unknown_label(tmp_path):
    (tmp_path / "sts-dev.csv").write_bytes(b"g\tf\t2012\t0\t1.0\tA\xff.\tB.\n")
    with pytest.raises(DataError, match="line 1 is not valid UTF-8"):
        data.load_stsb(local(tmp_path), "validation")
    dev_pool(tmp_path, snli_1_0_dev=NLI_HEADER + "1,a,b,maybe\n")
    with pytest.raises(DataError, match="label 'maybe' is not one of"):
        data.load_nli(local(tmp_path), 1)


# ---------------------------------------------------------------------------------------------- hub source


def test_hub_source_loads_the_pinned_commits_with_the_local_columns(monkeypatch):
    """The hub path (embedlab.hub_data) without a network: a fake ``load_dataset`` records what is asked."""
    import datasets
    from datasets import Dataset

    tables = {
        ("nyu-mll/glue", "mnli"): {"premise": ["p1", "p2"], "hypothesis": ["h1", "h2"], "label": [0, 2], "idx": [0, 1]},
        ("nyu-mll/glue", "stsb"): {"sentence1": ["a"], "sentence2": ["b"], "label": [4.5], "idx": [0]},
        ("mteb/stsbenchmark-sts", None): {"sentence1": ["c"], "sentence2": ["d"], "score": [1.0], "split": ["test"]},
        ("RobZamp/sick", None): {"sentence_A": ["e"], "sentence_B": ["f"], "relatedness_score": [3.2], "id": [1]},
    }
    calls = []

    def fake_load_dataset(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        return Dataset.from_dict(tables[(path, name)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    revisions = {"nyu-mll/glue": "g1", "mteb/stsbenchmark-sts": "m1", "RobZamp/sick": "s1"}
    hub = data.Source("hub", revisions=tuple(sorted(revisions.items())))
    nli, info = data.load_nli(hub, 1)
    assert nli.to_dict() == {"premise": ["p1"], "hypothesis": ["h1"], "label": [0]} and info["kind"] == "hub"
    pairs = ["sentence1", "sentence2", "score"]
    assert data.load_stsb(hub, "validation").to_dict() == dict(zip(pairs, (["a"], ["b"], [4.5]), strict=True))
    assert data.load_eval_set(hub, "stsb_test").column_names == pairs
    assert data.load_sickr(hub).to_dict() == dict(zip(pairs, (["e"], ["f"], [3.2]), strict=True))
    assert calls == [
        ("nyu-mll/glue", "mnli", "train", "g1"),
        ("nyu-mll/glue", "stsb", "validation", "g1"),
        ("mteb/stsbenchmark-sts", None, "test", "m1"),
        ("RobZamp/sick", None, "test", "s1"),
    ]
    with pytest.raises(DataError, match="asked for 3 NLI rows but glue/mnli train has 2"):
        data.load_nli(hub, 3)
    with pytest.raises(DataError, match="no pinned revision for the Hub dataset RobZamp/sick"):
        data.load_sickr(data.Source("hub", revisions=(("nyu-mll/glue", "g1"),)))

    def unreachable(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataError, match=r"could not load nyu-mll/glue/stsb \(train\) at g1 .*no route") as err:
        data.load_stsb(hub, "train")
    assert "EMBEDLAB_DATA_DIR" in str(err.value)
