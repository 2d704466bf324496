"""A default feature pipeline from a schema: a frame LightGBM takes directly, leak-free by construction."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..data.schema import Schema, infer_schema
from ..data.validation import renamed_params
from ._frame import FrameTransformer, as_frame, check_columns, check_input, output
from .dates import DEFAULT_PARTS, DateFeatures
from .encoders import AsCategory, CountEncoder
from .text import TextNgramFeatures


class FeaturePipeline(FrameTransformer):
    """Turn the feature columns of ``schema`` into model inputs; see :func:`build`.

    - numeric columns pass through (as numbers);
    - categorical columns become pandas ``category`` with the training categories (unseen and
      missing values are missing), which LightGBM splits on natively; those with more than
      ``count_threshold`` categories also get ``<column>_count``, their training frequency;
    - text columns become word + character n-gram counts (``<column>__word__<n-gram>``, ...),
      at most ``text_max_features`` per vectorizer, or ``text_svd`` SVD components;
    - datetime columns become ``date_parts`` (``<column>_year``, ..., ``<column>_elapsed_days``).

    Id, ignored and target columns are dropped, so test data without the target transforms too.
    Nothing here looks at the target: fitting on all training rows leaks nothing.
    """

    @renamed_params(seed="random_state")
    def __init__(
        self,
        schema: Schema | None = None,
        count_threshold: int | None = 30,
        text_max_features: int | None = 100,
        text_svd: int | None = None,
        date_parts: Sequence[str] = DEFAULT_PARTS,
        date_reference: Any = None,
        random_state: int = 0,
    ) -> None:
        self.schema = schema
        self.count_threshold = count_threshold
        self.text_max_features = text_max_features
        self.text_svd = text_svd
        self.date_parts = date_parts
        self.date_reference = date_reference
        self.random_state = random_state

    def _frame(self, X: Any, fit: bool) -> tuple[pd.DataFrame, bool]:
        if not isinstance(self.schema, Schema):
            raise TypeError(
                f"FeaturePipeline needs a workbench Schema (from infer_schema), got {type(self.schema).__name__}; "
                "use build(df, target=...) to infer one"
            )
        # fit records the input columns; transform needs only the schema's features (no target at test time)
        frame, was_frame = check_input(self, X, reset=True) if fit else as_frame(X, "FeaturePipeline")
        check_columns(frame, self.schema.features, "FeaturePipeline", what="schema feature column")
        return frame, was_frame

    def fit(self, X: Any, y: Any = None) -> FeaturePipeline:
        """Learn categories, counts, vocabularies and date references from the feature columns."""
        frame, _ = self._frame(X, fit=True)
        s = self.schema
        self.numeric_ = list(s.numeric)
        self.categorical_ = (
            AsCategory(columns=list(s.categorical)).fit(frame[list(s.categorical)]) if s.categorical else None
        )
        frequent: list[Hashable] = []
        if self.categorical_ is not None and self.count_threshold is not None:
            frequent = [c for c in s.categorical if len(self.categorical_.categories_[c]) > self.count_threshold]
        self.counts_ = CountEncoder(columns=frequent).fit(frame[frequent]) if frequent else None
        self.text_ = {}
        for col in s.text:
            ngrams = TextNgramFeatures(
                columns=[col],
                max_features=self.text_max_features,
                svd_components=self.text_svd,
                sparse_output=False,
                random_state=self.random_state,
            )
            self.text_[col] = ngrams.fit(frame[[col]])
        self.dates_ = None
        if s.datetime:
            dates = DateFeatures(columns=list(s.datetime), parts=self.date_parts, reference=self.date_reference)
            self.dates_ = dates.fit(frame[list(s.datetime)])
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        """The model-ready frame; ``X`` needs the schema's feature columns (others are ignored)."""
        check_is_fitted(self, "numeric_")
        frame, was_frame = self._frame(X, fit=False)
        blocks: dict[Hashable, list[pd.DataFrame | pd.Series]] = {}
        for col in self.numeric_:
            values = frame[col]
            if not pd.api.types.is_numeric_dtype(values.dtype):
                try:
                    values = pd.to_numeric(values)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"FeaturePipeline: numeric column {col!r} holds non-numbers: {exc}") from exc
            blocks[col] = [values]
        if self.categorical_ is not None:
            cats = self.categorical_.transform(frame[self.categorical_.columns_])
            for col in self.categorical_.columns_:
                blocks[col] = [cats[col]]
        if self.counts_ is not None:
            counts = self.counts_.transform(frame[self.counts_.columns_])
            for col in self.counts_.columns_:
                blocks[col].append(counts[col].rename(f"{col}_count"))
        for col, ngrams in self.text_.items():
            blocks[col] = [ngrams.transform(frame[[col]])]
        if self.dates_ is not None:
            dates = self.dates_.transform(frame[self.dates_.columns_])
            for col in self.dates_.columns_:
                blocks[col] = [dates[self.dates_.part_names(col)]]
        parts = [b for col in self.schema.features for b in blocks[col]]
        return output(pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index), was_frame)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns, in order (each feature's block where the feature was)."""
        check_is_fitted(self, "numeric_")
        names: list[str] = []
        counted = set(self.counts_.columns_) if self.counts_ is not None else set()
        for col in self.schema.features:
            if col in self.text_:
                names += list(self.text_[col].get_feature_names_out())
            elif self.dates_ is not None and col in self.dates_.columns_:
                names += self.dates_.part_names(col)
            else:
                names.append(str(col))
                if col in counted:
                    names.append(f"{col}_count")
        return np.asarray(names, dtype=object)


def build(
    data: pd.DataFrame | Schema | None = None,
    schema: Schema | None = None,
    *,
    target: str | None = None,
    **options: Any,
) -> FeaturePipeline:
    """A default feature pipeline (unfitted) for the columns of ``schema``.

    ``build(schema)`` uses the schema as given; ``build(df, schema)`` also checks that ``df`` has
    the schema's feature columns; ``build(df, target="y")`` infers the schema with
    :func:`~workbench.data.infer_schema`. ``options`` go to :class:`FeaturePipeline`
    (``count_threshold``, ``text_max_features``, ``text_svd``, ``date_parts``, ``date_reference``).
    The result is a scikit-learn transformer whose output LightGBM takes as it is.

    Parameters
    ----------
    data : DataFrame or Schema, optional
        The training frame (checked against the schema, or the schema inferred from it), or the schema.
    schema : Schema, optional
        The column roles; inferred from ``data`` with ``target`` when not given.
    target : str, optional
        The target column, required to infer the schema.
    **options
        Passed to :class:`FeaturePipeline`.

    Returns
    -------
    FeaturePipeline
        Unfitted.

    Raises
    ------
    ValueError
        Without a schema or a frame and target to infer one from.

    Examples
    --------
    >>> from workbench.data import infer_schema
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> schema = infer_schema(df, target="Churn")
    >>> X = build(df, schema).fit_transform(df)
    >>> X.shape, X.columns[:3].tolist()
    ((7043, 19), ['gender', 'SeniorCitizen', 'Partner'])
    """
    if isinstance(data, Schema):
        if schema is not None:
            raise ValueError("build: pass the schema once, either build(schema) or build(df, schema)")
        schema, data = data, None
    if data is not None and not isinstance(data, pd.DataFrame):
        raise TypeError(f"build needs a DataFrame and/or a Schema, got {type(data).__name__}")
    if schema is None:
        if data is None:
            raise ValueError(
                "build needs a schema or a DataFrame to infer one from: build(df, target=...) or build(schema)"
            )
        if target is None:
            raise ValueError(
                "build(df) without a schema needs target=... so the target is never used as a feature; "
                "or pass schema=infer_schema(df, target=...)"
            )
        schema = infer_schema(data, target=target)
    elif target is not None and schema.target != target:
        raise ValueError(f"build: target={target!r} differs from the schema's target {schema.target!r}")
    if data is not None:
        check_columns(data, schema.features, "build", what="schema feature column")
    return FeaturePipeline(schema, **options)


__all__ = ["FeaturePipeline", "build"]
