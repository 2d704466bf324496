"""Word and character n-gram features of text columns: the classic union of two CountVectorizers."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from ..data.validation import renamed_params
from ._frame import FrameTransformer, as_list, check_columns, check_feature_names_arg, check_input, output

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default word pattern
_COMBINE = ("separate", "concat")
_CHAR_ANALYZERS = ("char", "char_wb")


class _StemmingTokenizer:
    """Split a (lower-cased) document into words and reduce each to its Snowball stem.

    A plain class rather than a closure so that fitted vectorizers stay picklable.
    """

    def __init__(self, language: str, token_pattern: str = _TOKEN_PATTERN) -> None:
        self.language = language
        self.token_pattern = token_pattern
        self._stemmer: Any = None

    def __call__(self, doc: str) -> list[str]:
        if self._stemmer is None:
            import snowballstemmer

            self._stemmer = snowballstemmer.stemmer(self.language)
        return self._stemmer.stemWords(re.findall(self.token_pattern, doc))

    def __getstate__(self) -> dict[str, Any]:
        return {"language": self.language, "token_pattern": self.token_pattern, "_stemmer": None}


def _check_stemmer(stemmer: str | None) -> None:
    if stemmer is None:
        return
    import snowballstemmer

    if stemmer not in snowballstemmer.algorithms():
        raise ValueError(
            f"TextNgramFeatures: unknown stemmer {stemmer!r}; use None or a Snowball language: "
            f"{sorted(snowballstemmer.algorithms())}"
        )


def _documents(frame: pd.DataFrame, columns: Sequence[Hashable]) -> np.ndarray:
    """One document per row: the columns' text (missing as empty) joined by a space."""
    texts = [frame[c].astype(object).where(frame[c].notna(), "").astype(str) for c in columns]
    joined = texts[0] if len(texts) == 1 else texts[0].str.cat(texts[1:], sep=" ")
    return joined.to_numpy(dtype=object)


class TextNgramFeatures(FrameTransformer):
    """Word n-grams plus character n-grams of one or more text columns, as one sparse matrix.

    For each text source a word ``CountVectorizer`` (``word_ngram_range``, set ``None`` to skip)
    and a character one (``char_ngram_range`` with ``char_analyzer``, ``None`` to skip) are fitted
    and their columns stacked, as in the ``FeatureUnion`` of Kaggle text competitions. The sources
    are the ``columns`` one by one (``combine="separate"``) or joined into one document per row
    (``combine="concat"``). ``max_features``, ``min_df`` and ``max_df`` apply to each vectorizer;
    ``binary`` counts presence, ``tfidf`` weights by TF-IDF (``sublinear_tf`` takes ``1 + log(tf)``),
    ``stemmer`` (a Snowball language such as ``"english"``) stems the words before the word n-grams.

    The output is a CSR matrix LightGBM takes as it is; ``sparse_output=False`` gives a DataFrame,
    and ``svd_components=k`` projects each source to ``k`` dense truncated-SVD components instead.
    Feature names read ``<source>__word__<n-gram>``, ``<source>__char__<n-gram>`` or
    ``<source>__svd_<i>``; a concatenated source is named ``"+".join(columns)``.

    Parameters
    ----------
    columns : column name or list of them, optional
        The text columns (default: every text column).
    word_ngram_range : (int, int) or None, default (1, 2)
        Word n-gram lengths; ``None`` skips word n-grams.
    char_ngram_range : (int, int) or None, default (2, 4)
        Character n-gram lengths; ``None`` skips character n-grams.
    char_analyzer : {"char_wb", "char"}, default "char_wb"
        Character n-grams inside word boundaries or across them.
    max_features : int, optional
        Most columns per vectorizer (the most frequent n-grams).
    min_df, max_df : float or int, default 1, 1.0
        Document-frequency bounds per vectorizer, as scikit-learn reads them.
    binary : bool, default False
        Count presence instead of occurrences.
    tfidf : bool, default False
        Weight by TF-IDF.
    sublinear_tf : bool, default False
        With ``tfidf``, use ``1 + log(tf)``.
    lowercase : bool, default True
        Lowercase before tokenising.
    stemmer : str, optional
        A Snowball language that stems the words.
    combine : {"separate", "concat"}, default "separate"
        One source per column, or the columns joined into one.
    svd_components : int, optional
        Project each source to this many truncated-SVD components.
    sparse_output : bool, default True
        CSR matrix, or a DataFrame when False.
    random_state : int, default 0
        Seed of the SVD.
    dtype : numpy dtype, default numpy.float32
        Of the output.

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"title": ["red apple", "green apple", "red car"], "body": ["sweet", "sour", "fast"]})
    >>> ngrams = TextNgramFeatures(columns=["title", "body"], max_features=1000, tfidf=True)
    >>> X_text = ngrams.fit_transform(train)
    >>> type(X_text).__name__, X_text.dtype
    ('csr_matrix', dtype('float32'))
    >>> ngrams.get_feature_names_out()[:3].tolist()
    ['title__word__apple', 'title__word__car', 'title__word__green']
    """

    categorical_input = False

    @renamed_params(seed="random_state")
    def __init__(
        self,
        columns: Sequence[Hashable] | Hashable | None = None,
        word_ngram_range: tuple[int, int] | None = (1, 2),
        char_ngram_range: tuple[int, int] | None = (2, 4),
        char_analyzer: str = "char_wb",
        max_features: int | None = None,
        min_df: float | int = 1,
        max_df: float | int = 1.0,
        binary: bool = False,
        tfidf: bool = False,
        sublinear_tf: bool = False,
        lowercase: bool = True,
        stemmer: str | None = None,
        combine: str = "separate",
        svd_components: int | None = None,
        sparse_output: bool = True,
        random_state: int = 0,
        dtype: Any = np.float32,
    ) -> None:
        self.columns = columns
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.char_analyzer = char_analyzer
        self.max_features = max_features
        self.min_df = min_df
        self.max_df = max_df
        self.binary = binary
        self.tfidf = tfidf
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase
        self.stemmer = stemmer
        self.combine = combine
        self.svd_components = svd_components
        self.sparse_output = sparse_output
        self.random_state = random_state
        self.dtype = dtype

    def _check_params(self) -> None:
        if self.word_ngram_range is None and self.char_ngram_range is None:
            raise ValueError(
                "TextNgramFeatures: word_ngram_range and char_ngram_range are both None; keep at least one"
            )
        if self.combine not in _COMBINE:
            raise ValueError(f"TextNgramFeatures: combine must be one of {_COMBINE}, got {self.combine!r}")
        if self.char_analyzer not in _CHAR_ANALYZERS:
            raise ValueError(
                f"TextNgramFeatures: char_analyzer must be one of {_CHAR_ANALYZERS}, got {self.char_analyzer!r}"
            )
        if self.svd_components is not None and (
            not isinstance(self.svd_components, int | np.integer) or self.svd_components < 1
        ):
            raise ValueError(
                f"TextNgramFeatures: svd_components must be None or a positive integer, got {self.svd_components!r}"
            )
        _check_stemmer(self.stemmer)

    def _vectorizer(self, part: str) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        common: dict[str, Any] = {
            "max_features": self.max_features,
            "min_df": self.min_df,
            "max_df": self.max_df,
            "binary": self.binary,
            "lowercase": self.lowercase,
            "dtype": self.dtype,
        }
        if part == "word":
            common["ngram_range"] = tuple(self.word_ngram_range)
            if self.stemmer is not None:
                common.update(tokenizer=_StemmingTokenizer(self.stemmer), token_pattern=None)
        else:
            common.update(analyzer=self.char_analyzer, ngram_range=tuple(self.char_ngram_range))
        if self.tfidf:
            return TfidfVectorizer(sublinear_tf=self.sublinear_tf, **common)
        return CountVectorizer(**common)

    def _sources(self, frame: pd.DataFrame, was_frame: bool) -> list[tuple[str, list[Hashable]]]:
        if self.columns is None:
            cols = [
                c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype) or frame[c].dtype == object
            ]
            if was_frame and not cols:
                raise ValueError("TextNgramFeatures found no text (str/object) columns; name them with columns=[...]")
            cols = cols if was_frame else list(frame.columns)
        else:
            cols = as_list(self.columns)
            check_columns(frame, cols, "TextNgramFeatures")
        if self.combine == "concat":
            return [("+".join(str(c) for c in cols), cols)]
        return [(str(c), [c]) for c in cols]

    def fit(self, X: Any, y: Any = None) -> TextNgramFeatures:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        self._check_params()
        frame, was_frame = check_input(self, X, reset=True)
        self.sources_ = self._sources(frame, was_frame)
        self.vectorizers_: list[list[tuple[str, Any]]] = []
        self.svds_: list[Any] = []
        blocks = []
        for name, cols in self.sources_:
            docs = _documents(frame, cols)
            fitted, mats = [], []
            for part in ("word", "char"):
                if getattr(self, f"{part}_ngram_range") is None:
                    continue
                vec = self._vectorizer(part)
                try:
                    mats.append(vec.fit_transform(docs))
                except ValueError as exc:
                    raise ValueError(f"TextNgramFeatures: {part} n-grams of {name!r}: {exc}") from exc
                fitted.append((part, vec))
            self.vectorizers_.append(fitted)
            blocks.append(self._project(len(blocks), name, sp.hstack(mats, format="csr"), fit=True))
        return self._output(frame, was_frame, blocks)

    def _project(self, source: int, name: str, matrix: sp.csr_matrix, fit: bool) -> Any:
        """The n-gram matrix of source number ``source`` as it is, or its SVD components."""
        if self.svd_components is None:
            return matrix
        if fit:
            from sklearn.decomposition import TruncatedSVD

            if matrix.shape[1] <= self.svd_components:
                raise ValueError(
                    f"TextNgramFeatures: svd_components={self.svd_components} needs more n-gram features than that; "
                    f"{name!r} has {matrix.shape[1]}: lower svd_components"
                )
            if matrix.shape[0] <= self.svd_components:
                raise ValueError(
                    f"TextNgramFeatures: svd_components={self.svd_components} needs more rows than components; "
                    f"got {matrix.shape[0]} sample(s)"
                )
            svd = TruncatedSVD(n_components=self.svd_components, random_state=self.random_state)
            self.svds_.append(svd)
            return svd.fit_transform(matrix).astype(self.dtype)
        return self.svds_[source].transform(matrix).astype(self.dtype)

    def transform(self, X: Any) -> Any:
        """N-gram counts (or weights, or SVD components) of ``X``'s text with the fitted vocabularies."""
        check_is_fitted(self, "vectorizers_")
        frame, was_frame = check_input(self, X, reset=False)
        blocks = []
        for source, ((name, cols), fitted) in enumerate(zip(self.sources_, self.vectorizers_, strict=True)):
            docs = _documents(frame, cols)
            matrix = sp.hstack([vec.transform(docs) for _, vec in fitted], format="csr")
            blocks.append(self._project(source, name, matrix, fit=False))
        return self._output(frame, was_frame, blocks)

    def _output(self, frame: pd.DataFrame, was_frame: bool, blocks: list[Any]) -> Any:
        if self.svd_components is None:
            matrix = sp.hstack(blocks, format="csr").astype(self.dtype)
            if self.sparse_output:
                return matrix
            dense = matrix.toarray()
        else:
            dense = np.hstack(blocks)
        return output(pd.DataFrame(dense, columns=self.get_feature_names_out(), index=frame.index), was_frame)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<source>__word__<n-gram>``, ``<source>__char__<n-gram>`` or ``<source>__svd_<i>``."""
        check_is_fitted(self, "vectorizers_")
        check_feature_names_arg(self, input_features)
        names: list[str] = []
        for (name, _), fitted in zip(self.sources_, self.vectorizers_, strict=True):
            if self.svd_components is not None:
                names += [f"{name}__svd_{i}" for i in range(self.svd_components)]
                continue
            for part, vec in fitted:
                names += [f"{name}__{part}__{term}" for term in vec.get_feature_names_out()]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # n-gram counts come out as ``dtype`` (float32)
        return tags


__all__ = ["TextNgramFeatures"]
