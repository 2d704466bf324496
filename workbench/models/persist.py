"""Fitted models on disk in forms another user can load without running code the writer chose.

Unpickling runs whatever the pickle says, so a pickle (joblib) is loaded only from a file owned by
the user loading it, or when the caller passes ``trust=True`` for its writer. Models cross users
in safe forms instead:

* LightGBM's scikit-learn models as LightGBM's own text model (``<stem>.lgbm.txt``) plus the
  wrapper's fitted attributes as typed JSON (``<stem>.lgbm.json``), rebuilt into the same class;
* other scikit-learn models with skops (``<stem>.skops``), loaded only when every type in the file
  is one skops trusts by default (:func:`skops.io.get_untrusted_types` is empty).

:func:`save_model` writes every form a model has (and the joblib pickle for its own user);
:func:`load_model` prefers the safe forms and falls back to the pickle under the owner rule.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import stat
from collections import defaultdict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LIGHTGBM_TEXT, LIGHTGBM_STATE, SKOPS, JOBLIB = ".lgbm.txt", ".lgbm.json", ".skops", ".joblib"
_LIGHTGBM_CLASSES = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")


class UntrustedFileError(PermissionError):
    """A pickle written by another user (or a symlink to one) that the caller did not trust."""


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def open_trusted(path: str | os.PathLike[str], trust: bool = False, fix: str = "trust=True") -> BinaryIO:
    """Open pickle ``path`` for unpickling: a regular file owned by this user, unless ``trust``.

    Parameters
    ----------
    path
        The pickle (or joblib) file.
    trust
        Skip the owner check (and follow a symlink): the caller trusts whoever wrote the file.
    fix
        How the caller passes ``trust`` (named in the error), e.g. ``CVResult.load(path, trust=True)``.

    Returns
    -------
    BinaryIO
        The open file; its owner was checked on the descriptor, so the file cannot be swapped after the check.

    Raises
    ------
    UntrustedFileError
        The file is owned by another user or is a symlink, and ``trust`` is false.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if trust else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UntrustedFileError(
                f"{path} is a symlink; a pickle is only loaded from a file itself "
                f"(pass {fix} if you trust whoever placed it)"
            ) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedFileError(f"{path} is not a regular file; refusing to unpickle it")
        if not trust and info.st_uid != os.geteuid():
            owner, me = _user(info.st_uid), _user(os.geteuid())
            raise UntrustedFileError(
                f"{path} is a pickle written by {owner}, not by you ({me}); loading a pickle runs any code its "
                f"writer put in it, so only your own are loaded. Pass {fix} if you trust {owner}, or ask "
                f"{owner} to save it in a safe form (LightGBM text model, skops)"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def load_pickle(path: str | os.PathLike[str], trust: bool = False, fix: str = "trust=True") -> Any:
    """``joblib.load`` of ``path`` under the owner rule of :func:`open_trusted` (plain pickles load too)."""
    import joblib

    with open_trusted(path, trust, fix) as fh:
        return joblib.load(fh)


# ------------------------------------------------------------------- LightGBM: text model + JSON


def _encode(value: Any) -> Any:
    """Typed JSON of a fitted attribute; :class:`TypeError` for anything that is not plain data."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray) and value.dtype != object:
        return {"ndarray": value.dtype.str, "shape": list(value.shape), "items": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return {"scalar": value.dtype.str, "item": value.item()}
    if isinstance(value, list | tuple):
        return {"list" if isinstance(value, list) else "tuple": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    from sklearn.preprocessing import LabelEncoder

    if type(value) is LabelEncoder:
        return {"label_encoder": _encode(value.classes_)}
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    (kind, body), *rest = value.items()
    if kind == "ndarray":
        return np.asarray(value["items"], dtype=np.dtype(body)).reshape(value["shape"])
    if kind == "scalar":
        return np.dtype(body).type(value["item"])
    if kind in ("list", "tuple"):
        items = [_decode(v) for v in body]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {_decode(k): _decode(v) for k, v in body}
    if kind == "label_encoder":
        from sklearn.preprocessing import LabelEncoder

        encoder = LabelEncoder()
        encoder.classes_ = _decode(body)
        return encoder
    raise ValueError(f"unknown stored value kind {kind!r}")


def _lightgbm_state(model: Any) -> dict[str, Any] | None:
    """The wrapper's class, parameters and fitted attributes as typed JSON; None when not plain data."""
    import lightgbm

    name = type(model).__name__
    if name not in _LIGHTGBM_CLASSES or type(model) is not getattr(lightgbm, name):
        return None
    params = model.get_params(deep=False)
    fitted = {k: v for k, v in vars(model).items() if k not in params and k != "_Booster"}
    fitted = {k: (dict(v) if isinstance(v, defaultdict) else v) for k, v in fitted.items()}
    try:
        return {
            "class": name,
            "params": _encode(params),
            "fitted": _encode(fitted),
            "best_iteration": int(model.booster_.best_iteration),
        }
    except TypeError:  # a custom objective or other code among the parameters: only the pickle holds it
        return None


def _rebuild_lightgbm(text: Path, state_file: Path) -> Any:
    import lightgbm

    state = json.loads(state_file.read_text())
    if state.get("class") not in _LIGHTGBM_CLASSES:
        raise ValueError(f"{state_file} names {state.get('class')!r}, not a LightGBM scikit-learn model")
    model = getattr(lightgbm, state["class"])(**_decode(state["params"]))
    booster = lightgbm.Booster(model_file=str(text))
    booster.best_iteration = int(state["best_iteration"])
    # what unpickling the wrapper does (its instance dict restored), with the booster from its text model
    model.__dict__.update(_decode(state["fitted"]), _Booster=booster)
    return model


# ---------------------------------------------------------------------------------- save / load


def save_model(model: Any, folder: str | os.PathLike[str], stem: str) -> list[str]:
    """Write ``model`` as ``folder/<stem>.*`` in every form it has; the suffixes written.

    Always the joblib pickle (loadable by its writer); for LightGBM's scikit-learn models also the
    text model with the wrapper's state; for other models the skops file, when skops can store it.
    """
    import joblib

    folder = Path(folder)
    joblib.dump(model, folder / f"{stem}{JOBLIB}")
    written = [JOBLIB]
    from ._estimators import family

    if family(model) == "lightgbm":
        state = _lightgbm_state(model)
        if state is not None:
            model.booster_.save_model(str(folder / f"{stem}{LIGHTGBM_TEXT}"), num_iteration=-1)
            (folder / f"{stem}{LIGHTGBM_STATE}").write_text(json.dumps(state) + "\n")
            written += [LIGHTGBM_TEXT, LIGHTGBM_STATE]
        return written
    import skops.io

    try:
        data = skops.io.dumps(model)
    except Exception:  # noqa: BLE001 - skops stores what it knows; the rest crosses users only with trust
        return written
    (folder / f"{stem}{SKOPS}").write_bytes(data)
    return [*written, SKOPS]


def load_model(folder: str | os.PathLike[str], stem: str, trust: bool = False, fix: str = "trust=True") -> Any:
    """Read the model :func:`save_model` wrote, in the safest form present.

    Parameters
    ----------
    folder, stem
        Where the model's files are (``folder/<stem>.*``).
    trust
        Also unpickle the joblib file when another user wrote it (only when no safe form loads).
    fix
        How the caller passes ``trust`` (named in the error).

    Returns
    -------
    Any
        The fitted model: rebuilt from LightGBM text, loaded by skops, or unpickled.

    Raises
    ------
    UntrustedFileError
        Only a pickle is there (or skops finds types it does not trust), it was written by another
        user, and ``trust`` is false.
    """
    import skops.io

    folder = Path(folder)
    text, state, sk, pickled = (folder / f"{stem}{s}" for s in (LIGHTGBM_TEXT, LIGHTGBM_STATE, SKOPS, JOBLIB))
    if text.is_file() and state.is_file():
        return _rebuild_lightgbm(text, state)
    untrusted: list[str] = []
    if sk.is_file():
        data = sk.read_bytes()
        untrusted = skops.io.get_untrusted_types(data=data)
        if not untrusted:
            return skops.io.loads(data)
    try:
        return load_pickle(pickled, trust=trust, fix=fix)
    except UntrustedFileError as exc:
        if not untrusted:
            raise
        raise UntrustedFileError(
            f"{exc} (its skops copy holds types skops does not trust by default: {', '.join(untrusted)})"
        ) from None
