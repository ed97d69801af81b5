"""Command-line options built from the typed configs: one option per config field (its flag, type, help and default
come from the field, so a default is written once), plus the few flags every command family shares (``--small``,
the teacher, ``--trust-remote-code``), each written here once."""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import fields, replace
from typing import Any, Literal

from st_bertapprox.config import DEFAULT_TEACHER, field_default, field_types, flag


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "none" if value is None else str(value)


def add_config_options(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One option per field of the config dataclass ``cls`` (absent options keep the config's own default)."""
    group = parser.add_argument_group(title, cls.__doc__.splitlines()[0])
    hints = field_types(cls)
    for f in fields(cls):
        if not f.metadata.get("cli", True):
            continue
        hint = hints[f.name]
        args = typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:  # X | None
            hint = next(a for a in args if a is not type(None))
            args = typing.get_args(hint)
        kwargs: dict[str, Any] = dict(dest=f"{cls.__name__}.{f.name}", default=argparse.SUPPRESS)
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is Literal:
            kwargs["choices"] = list(args)
        elif typing.get_origin(hint) is list:
            kwargs.update(nargs="+", type=args[0])
        else:
            kwargs["type"] = hint
        if hint is not bool and "choices" not in kwargs:
            kwargs["metavar"] = f.name.upper()
        help_text = f"{f.metadata['help']} (default: {_shown(field_default(f))})".replace("%", "%%")
        group.add_argument(f.metadata.get("flag", flag(f.name)), help=help_text, **kwargs)


def config_from_args(args: argparse.Namespace, cls: type) -> Any:
    """The config of ``cls`` given on the command line: its defaults (or, with ``--small``, its preset), then the
    options. Invalid values raise ValueError naming the option."""
    given = {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith(cls.__name__ + ".")}
    small = getattr(args, "small", False) and hasattr(cls, "small")
    base = cls.small() if small else cls()
    return replace(base, **given)  # replace re-runs __post_init__: invalid values raise ValueError


def add_small(parser: argparse.ArgumentParser, what: str) -> None:
    """``--small``: every config of the command starts from its small preset (``st-bertapprox defaults`` lists
    them); ``what`` says what the preset runs."""
    parser.add_argument("--small", action="store_true", help=f"the small preset: {what} (see `defaults`)")


def add_trust(parser: argparse.ArgumentParser) -> None:
    """``--trust-remote-code``: the only way code from a model folder runs."""
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow loading models whose modules.json names Python code of their own (st-bertapprox's and "
        "sentence-transformers' modules never need it)",
    )


def add_teacher(parser: argparse.ArgumentParser) -> None:
    """The teacher of the distillation commands, and the devices that encode with it."""
    parser.add_argument(
        "--teacher", help=f"teacher SentenceTransformer (folder or Hub id; default: {DEFAULT_TEACHER})"
    )
    parser.add_argument(
        "--devices", nargs="+", help="e.g. cuda:0 cuda:1: teacher encoding with ST's multi-process pool"
    )


def add_base(parser: argparse.ArgumentParser) -> None:
    """``--base``: the BERT checkpoint a fine-tuning recipe starts from."""
    parser.add_argument("--base", help="BERT checkpoint to start from (default: the packaged all-MiniLM-L6-v2)")


MODEL_SPECS = "'teacher', a model folder or Hub id, numpy:FOLDER (a folded student in numpy), or an export folder"
