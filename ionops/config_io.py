"""Reading, overriding, explaining and writing experiment files (the schema is in :mod:`.config`).

Validation errors are rewritten to name the key as the file spells it: the
tags pydantic adds for discriminated unions (``model.fno.d_v``) are dropped
(``model.d_v``), and an unknown or missing key lists every valid key of its
table with its default, for the family or dataset kind at hand.
"""

from __future__ import annotations

import json
import tomllib
import types
import typing
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from ionops.errors import ConfigError


class Section(BaseModel):
    """A typed, immutable experiment table: unknown keys are errors, and so is a value of the
    wrong type (strict: ``epochs = "2"`` or ``batch_size = true`` is not read as a number; an
    integer is a float where a float is wanted). TOML arrays are read as tuples where a tuple
    is wanted."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _arrays_as_tuples(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        fields = cls.model_fields
        return {key: _as_tuples(fields[key].annotation, value) if key in fields else value
                for key, value in raw.items()}  # fmt: skip


def _as_tuples(annotation: Any, value: Any) -> Any:  # noqa: PLR0911 (one return per type)
    """``value`` with its lists turned into tuples wherever ``annotation`` wants a tuple."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _as_tuples(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            converted = _as_tuples(member, value)
            if converted is not value:
                return converted
        return value
    if origin is tuple and isinstance(value, list | tuple):
        items = typing.get_args(annotation)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_as_tuples(items[0], v) for v in value)
        if len(items) == len(value):
            return tuple(_as_tuples(item, v) for item, v in zip(items, value, strict=True))
        return tuple(value)
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(annotation) or (Any,)
        return [_as_tuples(item, v) for v in value]
    if origin is dict and isinstance(value, dict):
        item = typing.get_args(annotation)[1] if typing.get_args(annotation) else Any
        return {k: _as_tuples(item, v) for k, v in value.items()}
    return value


# the tables of the old schema, and where their keys live now
_MOVED = {"fno": '[model] with family = "fno"'}


def read_source(source: str | Path, shipped: Sequence[str]) -> tuple[dict[str, Any], str]:
    """The raw mapping of a shipped experiment (by name) or a TOML file, and its origin."""
    text_source = str(source)
    if text_source in shipped:
        text = resources.files("ionops.configs").joinpath(f"{text_source}.toml").read_text()
        origin = f"shipped experiment '{text_source}'"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(
                f"experiment '{text_source}' is neither a shipped name ({', '.join(shipped)}) "
                "nor an existing file"
            )
        origin = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{origin}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot be read: {exc.strerror}") from None
    try:
        return tomllib.loads(text), origin
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None


def set_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``section.key=value`` override to ``raw`` in place."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"override '{item}' is not of the form section.key=value (e.g. training.epochs=10)"
        )
    *sections, leaf = key.split(".")
    table = raw
    for depth, section in enumerate(sections):
        child = table.setdefault(section, {})
        if not isinstance(child, dict):
            where = ".".join(sections[: depth + 1])
            raise ConfigError(f"override '{item}': '{where}' is a value, not a table")
        table = child
    table[leaf] = _parse_value(text.strip())


def _parse_value(text: str) -> Any:
    """A TOML value if the text is one (10, 1e-3, true, [1, 2]), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def describe_error(err: Any, root: type[BaseModel], raw: Any) -> str:  # noqa: PLR0911
    """One pydantic error as a line that names the key, the value and what is allowed."""
    kind = err["type"]
    if kind == "missing" and err["loc"] and isinstance(err["loc"][-1], int):  # a short array
        names = _walk(tuple(err["loc"][:-1]), root)[0]
        if names[-1] != str(err["loc"][-2]):  # a key of a mapping (data.vary.u0)
            names.append(str(err["loc"][-2]))
        given = list(err["input"])
        return (f"{'.'.join(names)} = {given!r}: too few values; value {err['loc'][-1] + 1} "
                "is missing")  # fmt: skip
    parts, parent = _walk(tuple(err["loc"]), root)
    loc = ".".join(parts)
    if kind == "extra_forbidden":
        moved = _MOVED.get(loc)
        if moved is not None:
            return f"unknown key '{loc}': its keys now go in {moved}"
        return f"unknown key '{loc}'; {_valid_keys(parts[:-1], parent)}"
    if kind == "missing":
        return f"'{loc}' is required; {_valid_keys(parts[:-1], parent)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _describe_tag(loc, err, raw)
    value = err["input"]
    if isinstance(value, dict):
        message = err["msg"].removeprefix("Value error, ")
        return message if message.startswith(f"{loc}.") else f"{loc}: {message}"
    if kind.endswith("_type"):  # strict types: say what was given, as TOML names it
        return f"{loc} = {value!r}: {err['msg']}, not a {_toml_type(value)}"
    return f"{loc} = {value!r}: {err['msg']}"


def _toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
             tuple: "array", dict: "table"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _describe_tag(loc: str, err: Any, raw: Any) -> str:
    context = err.get("ctx") or {}
    key = str(context.get("discriminator", "family")).strip("'")
    if key.startswith("_") or key.endswith(")"):  # a callable discriminator: data.kind
        key = "kind"
    tags = context.get("expected_tags", "")
    if err["type"] == "union_tag_not_found":
        return f"'{loc}.{key}' is required; one of {tags}"
    group = {"family": "ionops.families", "kind": "ionops.dataset_kinds"}.get(key)
    how = (f" (a new one is a plug-in: an entry point in the group {group!r} of its package; "
           "README: Adding a family)" if group else "")  # fmt: skip
    return f"{loc}.{key} = {context.get('tag')!r}: unknown; known: {tags}{how}"


def _walk(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[list[str], type[BaseModel]]:
    """The key path without union tags, and the model class of its last table."""
    parts: list[str] = []
    model, parent = root, root
    index = 0
    while index < len(loc):
        part = str(loc[index])
        parts.append(part)
        index += 1
        field = model.model_fields.get(part)
        if field is None:
            break
        parent = model
        annotation = field.annotation
        members = _union_members(annotation)
        if members and index < len(loc) and str(loc[index]) in members:
            model = members[str(loc[index])]
            index += 1
            continue
        target = _model_of(annotation)
        if target is not None:
            model = target
            if index < len(loc) and str(loc[index]) in _tags_of(target):
                index += 1  # a union of one member still carries its tag
            continue
        value_model = _dict_value_model(annotation)
        if value_model is not None and index < len(loc):
            parts.append(str(loc[index]))
            index += 1
            model = value_model
            continue
        parts.extend(str(part) for part in loc[index:] if isinstance(part, str))  # dict keys
        break
    if parts and model is not root and parts[-1] not in model.model_fields:
        parent = model
    return parts, parent


def _union_members(annotation: Any) -> dict[str, type[BaseModel]]:
    """Tag -> model class of a (discriminated) union of models; empty for anything else."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return {}
    members: dict[str, type[BaseModel]] = {}
    for member in typing.get_args(annotation):
        tags: list[str] = []
        if typing.get_origin(member) is typing.Annotated:
            member, *metadata = typing.get_args(member)  # noqa: PLW2901
            tags = [str(m.tag) for m in metadata if hasattr(m, "tag")]
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            continue
        for tag in [*tags, *_tags_of(member)]:
            members[tag] = member
    return members


def _tags_of(model: type[BaseModel]) -> list[str]:
    """The discriminator values (``family`` or ``kind`` literals) a model class answers to."""
    for name in ("family", "kind"):
        field = model.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return [str(v) for v in typing.get_args(field.annotation)]
    return []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    """The model class of the values of ``dict[str, Model]`` (or ``... | None``)."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = list(typing.get_args(annotation))
    for candidate in candidates:
        if typing.get_origin(candidate) is dict:
            return _model_of(typing.get_args(candidate)[1])
    return None


def _valid_keys(parent_parts: Sequence[str], model: type[BaseModel]) -> str:
    where = f"[{'.'.join(parent_parts)}]" if parent_parts else "the top level"
    for tag_key in ("family", "kind"):
        field = model.model_fields.get(tag_key)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            values = "/".join(str(v) for v in typing.get_args(field.annotation))
            where += f" ({tag_key} {values})"
            break
    keys = []
    for name, field in model.model_fields.items():
        default = "required" if field.is_required() else f"default {_default(field)!r}"
        keys.append(f"{name} ({default})")
    return f"valid keys at {where}: {', '.join(keys)}"


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def dump_toml(config: BaseModel) -> str:
    """Render a config as TOML, the same format the loader reads (unset optional keys omitted)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in config.model_dump(exclude_none=True).items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        nested = [(k, v) for k, v in table.items() if isinstance(v, dict) and _is_table(v)]
        lines.extend(f"{_toml_key(key)} = {_toml_value(value)}" for key, value in table.items()
                     if (key, value) not in nested)  # fmt: skip
        for key, value in nested:
            lines.append(f"\n[{name}.{_toml_key(key)}]")
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
    return "\n".join(lines) + "\n"


def _is_table(value: dict[str, Any]) -> bool:
    """A nested mapping written as its own [a.b] table: one whose values are not all mappings."""
    return bool(value) and not all(isinstance(v, dict) for v in value.values())


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
