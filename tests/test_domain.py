"""10.6.2: Twitter loaders, the unlabelled corpus builder, the in-domain AP evaluator, the domain stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedlab import domain
from embedlab.errors import DataError
from embedlab.evaluation import PAIR_SCORE_COLUMNS


def _write_fake(root: Path) -> Path:
    """A miniature twitterpara folder with every format quirk the loaders handle."""
    pit = root / "twitterpara" / "pit2015"
    url = root / "twitterpara" / "url"
    pit.mkdir(parents=True)
    url.mkdir(parents=True)
    tags = "x/O/NN/B-NP/O\tx/O/NN/B-NP/O"
    (pit / "test.data").write_text(
        "\n".join(
            [
                f"1\tT\tThe game was great\tgreat game tonight\t4\t{tags}",
                f"1\tT\tThe game was great\tI hate mondays\t0\t{tags}",
                f"1\tT\tThe game was great\tMaybe the game\t3\t{tags}",
            ]
        )
        + "\n"
    )
    (pit / "test.label").write_text("true\t0.8000\nfalse\t0.0000\n----\t0.6000\n")
    (pit / "dev.data").write_text(
        "\n".join(
            [
                f"2\tD\tSo excited for the show\tthe show is on\t(3, 2)\t{tags}",
                f"2\tD\tTHE  GAME was great\tthe show is on\t(1, 4)\t{tags}",  # a test sentence, other case/spaces
                f"2\tD\tNew song out now\ti hate mondays\t(0, 5)\t{tags}",
            ]
        )
        + "\n"
    )
    (url / "Twitter_URL_Corpus_test.txt").write_text(
        "Headline one \tTweet about headline one \t(5,6)\thttps://t.co/a\n"
        "Headline one \tSomething else \t(0,6)\thttps://t.co/a\n"
        "Headline one \tUndecided tweet \t(3,6)\thttps://t.co/a\n"
        "Headline two \tA tweet with a broken\n"
        "\n"
        "Headline two \tAnother one \t(2,6)\t\thttps://t.co/b\n"
        "Headline two \tSame story \t(4,6)\thttps://t.co/b\n"
    )
    return root


def test_loaders_handle_the_formats(tmp_path):
    root = domain.twitter_root(_write_fake(tmp_path))
    pit = domain.load_pit2015_test(root)
    assert pit["label"] == [1, 0]  # the debatable "----" pair is left out
    assert pit["sentence2"] == ["great game tonight", "I hate mondays"]
    url = domain.load_twitter_url_test(root)
    assert url["label"] == [1, 0, 0, 1]  # n=3 dropped, continuation and blank lines skipped, >=4 positive
    assert url["sentence1"][0] == "Headline one"  # trailing space stripped
    assert domain.load_pit2015_sentences(root, "dev") == [
        "So excited for the show",
        "the show is on",
        "THE  GAME was great",
        "New song out now",
        "i hate mondays",
    ]


def test_corpus_excludes_every_test_sentence(tmp_path):
    root = _write_fake(tmp_path)
    evals = domain.load_eval_sets(root)
    corpus, counts = domain.build_corpus(domain.load_pit2015_sentences(root), domain.test_sentences(evals))
    assert corpus == ["So excited for the show", "the show is on", "New song out now"]
    assert counts == {"candidates": 5, "excluded_test_sentences": 2, "available": 3, "sentences": 3}
    sample, counts = domain.build_corpus(corpus, [], max_sentences=2, seed=1)
    assert len(sample) == 2 and set(sample) <= set(corpus) and counts["available"] == 3
    assert sample == domain.build_corpus(corpus, [], max_sentences=2, seed=1)[0]


def test_twitter_root_errors(tmp_path):
    with pytest.raises(DataError, match="no data folder"):
        domain.twitter_root(None)
    with pytest.raises(DataError, match="not found"):
        domain.twitter_root(tmp_path)


def test_url_votes_must_parse(tmp_path):
    root = _write_fake(tmp_path)
    (root / domain.URL_FILE).write_text("a\tb\tyes\turl\n")
    with pytest.raises(DataError, match="votes"):
        domain.load_twitter_url_test(root)


class FakeModel:
    """Embeds each text as a fixed vector, so the AP is known in advance."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors
        self.calls = 0

    def encode(self, texts, batch_size=64, convert_to_tensor=True, normalize_embeddings=True):
        import torch

        self.calls += 1
        v = torch.tensor([self.vectors[t] for t in texts], dtype=torch.float32)
        return torch.nn.functional.normalize(v, dim=1)


def test_average_precision_matches_sklearn():
    from datasets import Dataset
    from sklearn.metrics import average_precision_score

    vec = {"a": [1, 0], "b": [1, 0.1], "c": [0, 1], "d": [1, 1], "e": [0.2, 1]}
    ds = Dataset.from_dict(
        {"sentence1": ["a", "a", "a", "c"], "sentence2": ["b", "c", "d", "e"], "label": [1, 0, 1, 0]}
    )
    model = FakeModel(vec)
    ap = domain.average_precision(model, ds)
    assert model.calls == 1  # each distinct sentence encoded once
    unit = {k: np.array(v) / np.linalg.norm(v) for k, v in vec.items()}
    cos = [float(unit[x] @ unit[y]) for x, y in zip(ds["sentence1"], ds["sentence2"], strict=True)]
    assert ap == pytest.approx(average_precision_score(ds["label"], cos))
    perfect = Dataset.from_dict({"sentence1": ["a", "a"], "sentence2": ["b", "c"], "label": [1, 0]})
    out = domain.evaluate_domain(FakeModel(vec), {"pit2015": perfect, "twitter_url": ds})
    assert out["pit2015_ap"] == 1.0
    assert out["twitterpara_ap"] == pytest.approx((1.0 + ap) / 2)


def test_real_twitter_counts(data_dir):
    root = domain.twitter_root(data_dir)
    pit = domain.load_pit2015_test(root)
    url = domain.load_twitter_url_test(root)
    assert (len(pit), sum(pit["label"])) == (838, 175)  # 972 minus 134 debatable
    assert (len(url), sum(url["label"])) == (9334, 1821)  # 10,120 labelled lines minus 786 with n=3
    corpus, counts = domain.build_corpus(
        domain.load_pit2015_sentences(root), domain.test_sentences({"p": pit, "u": url})
    )
    assert counts["sentences"] == len(corpus) == 4772
    banned = {domain.normalize(s) for ds in (pit, url) for c in ("sentence1", "sentence2") for s in ds[c]}
    assert not banned & {domain.normalize(s) for s in corpus}


def test_domain_chain_on_tiny_profile(tiny_repo):
    info = json.loads((tiny_repo / "data/domain/corpus.json").read_text())
    assert info["corpus"]["sentences"] == 80 and info["corpus"]["available"] == 4772
    import pyarrow.parquet as pq

    for name in domain.EVAL_SETS:  # tiny: a seeded sample of 200 pairs, written as sampled
        assert (
            info["eval"][name]["pairs"] == pq.read_table(tiny_repo / f"data/domain/eval/{name}.parquet").num_rows == 200
        )
    for arm in ("domain-tsdae", "domain-finetune", "domain-adapted"):
        assert (tiny_repo / "models" / arm / "modules.json").is_file()
        assert "spearman_cosine" in json.loads((tiny_repo / "metrics" / f"{arm}.json").read_text())["sickr"]
    import pandas as pd
    from sentence_transformers import SentenceTransformer
    from sklearn.metrics import average_precision_score

    sets = {name: pd.read_parquet(tiny_repo / f"data/domain/eval/{name}.parquet") for name in domain.EVAL_SETS}
    arms = ("domain-tsdae", "domain-finetune", "domain-adapted")
    for variant, folder in [("zero-shot", "base/all-MiniLM-L6-v2"), *zip(arms, arms, strict=True)]:
        m = json.loads((tiny_repo / "metrics" / f"twitter-{variant}.json").read_text())
        assert m.keys() == {"pit2015", "twitter_url", "twitterpara"}  # <set>.<metric>, as the evaluate stage's
        assert all(list(v) == ["average_precision"] for v in m.values())
        # recomputed without embedlab: each column encoded on its own, cosine, sklearn's AP; TwitterPara the mean
        model = SentenceTransformer(str(tiny_repo / "models" / folder), device="cpu")
        expected = {}
        for name, df in sets.items():
            a, b = (model.encode(df[c].tolist(), normalize_embeddings=True) for c in ("sentence1", "sentence2"))
            expected[name] = average_precision_score(df["label"], (a * b).sum(axis=1))
        expected["twitterpara"] = sum(expected.values()) / 2
        assert {k: v["average_precision"] for k, v in m.items()} == pytest.approx(expected, abs=2e-6), variant
        # each pair's cosine for the report's paired tests: the same pairs, labels and AP
        pairs = pd.read_parquet(tiny_repo / "data" / "eval_scores" / f"{variant}@twitter.parquet")
        assert list(pairs.columns) == PAIR_SCORE_COLUMNS and set(pairs["metric"]) == {"average_precision"}
        for name, df in sets.items():
            own = pairs[pairs["set"] == name]
            assert own["gold"].tolist() == df["label"].tolist() and own["pair"].tolist() == list(range(len(df)))
            assert average_precision_score(own["gold"], own["cosine"]) == pytest.approx(expected[name], abs=2e-6)
    tests = json.loads((tiny_repo / "reports" / "comparisons.json").read_text())
    twitter = {t["set"]: t for t in tests if t["b"] == "domain-adapted" and t["set"] in domain.EVAL_SETS}
    assert set(twitter) == set(domain.EVAL_SETS)  # the adapted-vs-control test runs on the Twitter pairs
    assert {(t["status"], t["metric"], t["pairs"]) for t in twitter.values()} == {("ok", "average_precision", 200)}


def test_sampled_pairs_are_written_as_sampled(tmp_path):
    from datasets import Dataset

    from embedlab.io import read_parquet, write_parquet

    ds = Dataset.from_dict({"sentence1": list("abcdefgh"), "sentence2": list("ABCDEFGH"), "label": [0, 1] * 4})
    sample = domain.sample_pairs(ds, 4, seed=0)
    write_parquet(tmp_path / "s.parquet", sample)
    back = read_parquet(tmp_path / "s.parquet")
    assert len(back) == 4 and back["sentence1"] == sample["sentence1"]
    assert set(back["label"]) == {0, 1}
