"""Config dataclass fields that carry their command line: `opt(default, help)` for a plain field, the way
Hugging Face PEFT's config dataclasses do (`field(default=..., metadata={"help": ...})`), and
`nested(factory, help, ...)` for a job's `train: TrainConfig`, whose fields become the job's flags.

`flags(cls)` is the flat view both the CLI (`tuning.cli.add_config_args` / `config_from_args`) and
`compose(cls, **values)` read: one `Flag` per command-line flag, named as on the command line (with
underscores) and pointing at the field it sets. A nested config contributes its fields under their own
names (one level deep), except those the job sets per run (`exclude`), with a job's name or help text
where it reads them differently (`renamed`, `helps`).

Imports only the standard library, so any config module can use it without pulling in torch or an
import cycle.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field


def opt(default, help: str):
    """A field with a plain default (tuples, not lists: defaults are shared) and its one-line help."""
    return field(default=default, metadata={"help": help})


def nested(factory, help: str, exclude: typing.Iterable[str] = (), renamed: dict[str, str] | None = None,
           helps: dict[str, str] | None = None):
    """A field holding another config dataclass, built by `factory` (the job's defaults for it).

    Its fields become the job's flags under their own names, except `exclude` (fields the job sets itself,
    per run); `renamed` gives some another flag (`{"lr": "prompt_lr"}`: `--prompt-lr` sets `train.lr`), `helps`
    replaces the help text of some where the job reads them differently.
    """
    return field(default_factory=factory, metadata={
        "help": help, "nested": True, "exclude": tuple(exclude), "renamed": dict(renamed or {}),
        "helps": dict(helps or {})})


@dataclass(frozen=True)
class Flag:
    """One command-line flag of a config class: `--<name with dashes>` sets the field at `path`."""

    name: str               # e.g. "prompt_lr"; unique within the config class
    path: tuple[str, ...]   # ("seeds",) for a field of the class, ("train", "lr") for one of a nested config
    hint: object            # the field's type annotation, resolved
    default: object         # the class's default (for a nested field: the job's default for it)
    help: str


def dashed(name: str) -> str:
    return "--" + name.replace("_", "-")


def is_nested(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("nested"))


def flags(config_cls) -> list[Flag]:
    """Every flag of `config_cls`, in field order (a nested config's flags where the nested field stands)."""
    hints = typing.get_type_hints(config_cls)
    out = []
    for f in dataclasses.fields(config_cls):
        if not is_nested(f):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out.append(Flag(f.name, (f.name,), hints[f.name], default, f.metadata.get("help", "")))
            continue
        inner = f.default_factory()
        inner_hints = typing.get_type_hints(type(inner))
        names = {g.name for g in dataclasses.fields(inner)}
        excluded, renamed, helps = f.metadata["exclude"], f.metadata["renamed"], f.metadata["helps"]
        unknown = (set(excluded) | set(renamed) | set(helps)) - names
        if unknown:
            raise TypeError(f"{config_cls.__name__}.{f.name}: no field(s) {', '.join(sorted(unknown))} "
                            f"in {type(inner).__name__}")
        for g in dataclasses.fields(inner):
            if g.name not in excluded:
                text = rename_flags(helps.get(g.name, g.metadata.get("help", "")), renamed)
                out.append(Flag(renamed.get(g.name, g.name), (f.name, g.name), inner_hints[g.name],
                                getattr(inner, g.name), text))
    names = [fl.name for fl in out]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise TypeError(f"{config_cls.__name__}: more than one field would be {', '.join(map(dashed, clashes))}")
    return out


def compose(config_cls, **values):
    """A `config_cls` from flat values keyed by flag name, as the command line spells them
    (`compose(EnsembleConfig, tasks=("rte",), steps=30)`): a nested config starts from the job's
    defaults for it and takes the values of its flags. Fields not given keep their defaults."""
    by_name = {fl.name: fl for fl in flags(config_cls)}
    unknown = set(values) - set(by_name)
    if unknown:
        raise TypeError(f"{config_cls.__name__} has no flag(s) {', '.join(map(dashed, sorted(unknown)))}")
    outer: dict = {}
    inner: dict[str, dict] = {}
    for name, value in values.items():
        path = by_name[name].path
        if len(path) == 1:
            outer[path[0]] = value
        else:
            inner.setdefault(path[0], {})[path[1]] = value
    for f in dataclasses.fields(config_cls):
        if f.name in inner:
            outer[f.name] = dataclasses.replace(f.default_factory(), **inner[f.name])
    return config_cls(**outer)


def rename_flags(text: str, renamed: dict[str, str]) -> str:
    """`text` (a help text or error message of a nested config) naming the job's flags for renamed fields."""
    for name, flag in renamed.items():
        text = re.sub(re.escape(dashed(name)) + r"(?![\w-])", dashed(flag), text)
    return text


def validate_nested(config) -> None:
    """`validate()` every nested config of `config`; a message naming a renamed flag names the job's flag."""
    for f in dataclasses.fields(config):
        if not is_nested(f):
            continue
        try:
            getattr(config, f.name).validate()
        except ValueError as e:
            raise ValueError(rename_flags(str(e), f.metadata["renamed"])) from e
