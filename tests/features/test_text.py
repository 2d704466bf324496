"""TextNgramFeatures against scikit-learn's vectorizers on a small corpus, and into LightGBM."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import snowballstemmer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from workbench.features import TextNgramFeatures

CORPUS = pd.DataFrame(
    {
        "title": pd.Series(
            [
                "Great phone, great battery",
                "Battery died fast",
                None,
                "Screen cracked!",
                "Runs fast and runs cool",
                "Great screen",
                "battery running hot",
            ],
            dtype="str",
        ),
        "body": pd.Series(
            [
                "I love it",
                "Returned it after a week",
                "meh",
                "Dropped it once and it cracked",
                "Happy with the speed",
                "Colours are great",
                "It heats up when charging",
            ],
            dtype="str",
        ),
    }
)


def _docs(*cols):
    parts = [CORPUS[c].fillna("") for c in cols]
    return parts[0] if len(parts) == 1 else parts[0].str.cat(parts[1:], sep=" ")


def test_reproduces_a_union_of_count_vectorizers_per_column():
    ngrams = TextNgramFeatures(columns=["title", "body"], word_ngram_range=(1, 2), char_ngram_range=(2, 3))
    X = ngrams.fit_transform(CORPUS)
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32
    blocks, names = [], []
    for col in ["title", "body"]:
        for part, vec in [
            ("word", CountVectorizer(ngram_range=(1, 2))),
            ("char", CountVectorizer(analyzer="char_wb", ngram_range=(2, 3))),
        ]:
            blocks.append(vec.fit_transform(_docs(col)))
            names += [f"{col}__{part}__{t}" for t in vec.get_feature_names_out()]
    expected = sp.hstack(blocks).toarray()
    np.testing.assert_array_equal(X.toarray(), expected)
    assert list(ngrams.get_feature_names_out()) == names
    assert "title__word__great battery" in names and "body__char__ i" in names


def test_settings_follow_scikit_learn():
    settings = dict(max_features=15, min_df=2, binary=True)
    ours = TextNgramFeatures(columns=["title", "body"], combine="concat", char_ngram_range=None, **settings)
    ref = CountVectorizer(ngram_range=(1, 2), **settings).fit(_docs("title", "body"))
    np.testing.assert_array_equal(ours.fit_transform(CORPUS).toarray(), ref.transform(_docs("title", "body")).toarray())
    assert list(ours.get_feature_names_out()) == [f"title+body__word__{t}" for t in ref.get_feature_names_out()]

    tfidf = TextNgramFeatures(
        columns=["body"],
        word_ngram_range=None,
        char_ngram_range=(1, 4),
        char_analyzer="char",
        tfidf=True,
        sublinear_tf=True,
        dtype=np.float64,
    )
    ref = TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True).fit(_docs("body"))
    new = CORPUS.iloc[::-1]
    np.testing.assert_allclose(
        tfidf.fit(CORPUS).transform(new).toarray(), ref.transform(_docs("body")[::-1]).toarray(), rtol=1e-12
    )


def test_stemmer_merges_word_forms():
    ngrams = TextNgramFeatures(columns=["title"], char_ngram_range=None, word_ngram_range=(1, 1), stemmer="english")
    X = ngrams.fit_transform(CORPUS)
    stem = snowballstemmer.stemmer("english")
    words = CountVectorizer().fit(_docs("title")).get_feature_names_out()
    assert list(ngrams.get_feature_names_out()) == [f"title__word__{w}" for w in sorted(set(stem.stemWords(words)))]
    run = list(ngrams.get_feature_names_out()).index("title__word__run")  # runs, running -> run
    assert X[:, run].toarray().ravel().tolist() == [0, 0, 0, 0, 2, 0, 1]
    again = pickle.loads(pickle.dumps(ngrams))
    assert (again.transform(CORPUS) != X).nnz == 0


def test_svd_projection_and_dense_output():
    dense = TextNgramFeatures(columns=["title"], sparse_output=False).fit(CORPUS)
    frame = dense.transform(CORPUS)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(dense.get_feature_names_out())
    svd = TextNgramFeatures(columns=["title", "body"], svd_components=3, random_state=0)
    out = svd.fit_transform(CORPUS)
    assert list(out.columns) == [f"{c}__svd_{i}" for c in ["title", "body"] for i in range(3)]
    counts = TextNgramFeatures(columns=["title"]).fit_transform(CORPUS)
    ref = TruncatedSVD(n_components=3, random_state=0).fit_transform(counts)
    np.testing.assert_allclose(out.iloc[:, :3].to_numpy(), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(svd.transform(CORPUS).to_numpy(), out.to_numpy(), rtol=1e-4, atol=1e-4)


def test_lightgbm_takes_the_sparse_output():
    from lightgbm import LGBMClassifier

    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "fine", "awful", "great", "poor", "ok", "nice"])
    docs = [" ".join(rng.choice(words, 6)) for _ in range(400)]
    y = np.array([("good" in d or "great" in d) for d in docs], dtype=int)
    X = TextNgramFeatures(columns=["review"], word_ngram_range=(1, 1), char_ngram_range=None).fit_transform(
        pd.DataFrame({"review": docs})
    )
    model = LGBMClassifier(n_estimators=30, min_child_samples=5, verbose=-1, random_state=0, n_jobs=1).fit(X, y)
    assert (model.predict(X) == y).mean() > 0.95


def test_unseen_words_are_ignored_and_missing_text_is_empty():
    ngrams = TextNgramFeatures(columns=["title"], char_ngram_range=None).fit(CORPUS)
    new = pd.DataFrame({"title": ["completely novel words", None], "body": ["x", "y"]})
    assert ngrams.transform(new).nnz == 0


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="'summary'"):
        TextNgramFeatures(columns=["summary"]).fit(CORPUS)
    with pytest.raises(ValueError, match="both None"):
        TextNgramFeatures(word_ngram_range=None, char_ngram_range=None).fit(CORPUS)
    with pytest.raises(ValueError, match="unknown stemmer 'klingon'"):
        TextNgramFeatures(stemmer="klingon").fit(CORPUS)
    with pytest.raises(ValueError, match="no text"):
        TextNgramFeatures().fit(pd.DataFrame({"n": [1, 2]}))
    fitted = TextNgramFeatures().fit(CORPUS)
    with pytest.raises(ValueError, match="- body"):
        fitted.transform(CORPUS[["title"]])
