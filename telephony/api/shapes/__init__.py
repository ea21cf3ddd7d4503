"""Every JSON body the API takes and gives, declared once, as pydantic models.

``bodies`` holds what comes in, ``answers`` what goes out. The models check each request body
at the edge (``check_body``: the view's role first, then the shape, then the domain's own rules,
a 422 naming the field) and generate the OpenAPI document's schemas (``components``); under test,
every JSON answer is checked against its model too, so ``serialize`` cannot drift from them.

A few conventions keep the document what a client expects: no generated titles, dates and
moments as ISO strings, nullable as ``X | None``, and lists known only at run time (the languages
there are, the kinds registered) as ``Choice``, whose enum is read when the document is made.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from restrictions.errors import DomainError

REF = "#/components/schemas/{model}"


class Shape(BaseModel):
    """A JSON object. Fields it does not name are let through and ignored (the document says
    nothing about them), unless a model forbids them."""

    model_config = ConfigDict(extra="ignore")


class Answer(Shape):
    """A JSON answer. Under test it is checked strictly, so a field its model does not name
    fails the test that made it (nothing is sent undocumented); the document leaves it open, so
    a client accepts a field added later."""

    model_config = ConfigDict(extra="forbid")


class Choice:
    """A string from a list known only at run time (``prompts.languages``, say): checked on each
    request against the list as it is then, and listed as an ``enum`` when the document is made.
    Used as ``Annotated[str, Choice(prompts.languages)]``."""

    def __init__(self, values: Callable[[], Iterable[str]]) -> None:
        self.values = values

    def _check(self, value: str) -> str:
        allowed = list(self.values())
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {value[:40]!r}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        found["enum"] = list(self.values())
        return found


class Blank:
    """An optional field that also takes ``""`` as left out, as a form (or a client that fills
    every field) sends one: ``Annotated[Day | None, Blank()]``. Checked as null, documented as
    the field's type, ``""`` or null."""

    TAG = "(or blank)"  # the union's name for each way through; never part of a field's place

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # A union, not a function before the type: JSON's own checks (strict, a date as text)
        # apply only to what is parsed from JSON, and a function would hand the type a value.
        blank = core_schema.no_info_after_validator_function(
            lambda _: None, core_schema.literal_schema([""])
        )
        return core_schema.union_schema(
            [(handler(source), self.TAG), (blank, self.TAG)], mode="left_to_right"
        )


class _Document(GenerateJsonSchema):
    """JSON Schema as the document writes it: a model's title only when it declares one."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        found = super().model_schema(schema)
        if issubclass(schema["cls"], Answer) and found.get("additionalProperties") is False:
            del found["additionalProperties"]  # open to fields added later
        if not schema["cls"].model_config.get("title"):
            found.pop("title", None)
        if isinstance(found.get("description"), str):  # a docstring, as one paragraph
            found["description"] = " ".join(found["description"].split())
        return found


def components(shapes: Sequence[tuple[str, TypeAdapter[Any]]]) -> dict[str, JsonSchemaValue]:
    """The document's ``components.schemas``: each named shape and every model it refers to."""
    keyed: list[tuple[str, Literal["validation"], TypeAdapter[Any]]] = [
        (name, "validation", adapter) for name, adapter in shapes
    ]
    mapping, defs = TypeAdapter.json_schemas(keyed, ref_template=REF, schema_generator=_Document)
    found: dict[str, JsonSchemaValue] = dict(defs.get("$defs", {}))
    for (name, _), schema in mapping.items():
        if "$ref" in schema:  # a model: its definition is in $defs already, under its own name
            target = schema["$ref"].rsplit("/", 1)[-1]
            if target != name:
                found[name] = found[target]
        else:  # a union or another type: the schema itself
            found[name] = schema
    return found


def schema_of(adapter: TypeAdapter[Any]) -> JsonSchemaValue:
    """One shape's schema on its own (refs to other models inline under ``$defs``)."""
    return adapter.json_schema(schema_generator=_Document)


def domain_rule(check: Callable[[Any], object]) -> Any:
    """A model's check that the domain owns (``check`` raises its Invalid), run before the
    model's own, so the answer is in the domain's words: ``model_validator(mode="before")``."""

    def run(cls: type[BaseModel], value: Any) -> Any:
        try:
            check(value)
        except DomainError as exc:
            raise PydanticCustomError("domain", exc.message) from None
        return value

    return model_validator(mode="before")(classmethod(run))  # type: ignore[arg-type]


class AtMostAsMany:
    """An object keyed by a run-time list (a reason in each language): at most one entry per
    item, said as ``maxProperties`` when the document is made."""

    def __init__(self, values: Callable[[], Iterable[str]]) -> None:
        self.values = values

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        found["maxProperties"] = len(list(self.values()))
        return found


def _where(loc: Sequence[int | str]) -> str:
    """A field's place as the messages name it: ``postal_address[2]``, ``representative.name``,
    ``reason_translations key`` (the key, not its value, is wrong)."""
    parts = list(loc)
    key = parts[-1:] == ["[key]"]
    if key:
        parts = parts[:-2]
    out = ""
    for part in (p for p in parts if p != Blank.TAG):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return (f"{out} key" if key else out) or "the body"


def _required(schema: JsonSchemaValue, loc: Sequence[int | str]) -> bool:
    """Whether the field at ``loc`` must be given (is in its object's ``required``)."""
    defs, parent, name = schema.get("$defs", {}), None, None
    for part in (p for p in loc if p != Blank.TAG):
        while "$ref" in schema or "anyOf" in schema:
            if "$ref" in schema:
                schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
            else:  # the object (or list) among the options
                schema = next((o for o in schema["anyOf"] if "$ref" in o or "type" in o), {})
        if isinstance(part, int):
            schema, parent, name = schema.get("items", {}), None, None
        else:
            parent, name = schema, part
            schema = schema.get("properties", {}).get(part, {})
    return parent is not None and name in parent.get("required", ())


def problem(exc: ValidationError, schema: JsonSchemaValue | None = None) -> str:
    """The first thing wrong with a body, in the words the domain's own checks use. With the
    body's ``schema``, a null where a field must be given says it is required."""
    error = exc.errors(include_url=False)[0]
    where, kind, ctx = _where(error["loc"]), error["type"], error.get("ctx") or {}
    given = error.get("input")
    if kind == "domain":  # the domain's own words (``domain_rule``)
        return str(error["msg"])
    if kind == "missing" or (
        given is None and schema is not None and _required(schema, error["loc"])
    ):
        return f"{where} is required"
    if kind == "string_too_long":
        return f"{where} is longer than {ctx['max_length']} characters"
    if kind == "string_too_short":
        return f"{where} must not be empty"
    if kind == "too_short" and ctx["min_length"] == 1 and isinstance(given, list):
        return f"{where} must be a non-empty list"
    if kind in ("too_long", "too_short"):
        n = ctx["max_length"] if kind == "too_long" else ctx["min_length"]
        what = "entries" if isinstance(given, dict) else "items"
        bound = "may hold at most" if kind == "too_long" else "must hold at least"
        return f"{where} {bound} {n} {what}"
    if kind.startswith("date"):
        shown = json.dumps(given, ensure_ascii=False)[:40]  # "²⁰²⁶" as it was sent
        return f"{where} must be a date like 2026-03-01, not {shown}"
    if kind in ("string_type", "bool_type", "int_type", "list_type", "dict_type", "model_type"):
        wanted = {
            "string_type": "text",
            "bool_type": "true or false",
            "int_type": "a whole number",
            "list_type": "a list",
        }.get(kind, "an object")
        return f"{where} must be {wanted}" + (", not null" if given is None else "")
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("must "):  # a Choice's own words
        return f"{where} {message}"
    return f"{where}: {message[:1].lower()}{message[1:]}"


def check(adapter: TypeAdapter[Any], raw: bytes | str) -> str | None:
    """What is wrong with a JSON body for ``adapter`` (None: nothing), as JSON Schema reads it:
    strictly, so "1" is not a number and 1 is not true."""
    try:
        adapter.validate_json(raw, strict=True)
    except ValidationError as exc:
        return problem(exc, _schema(adapter))
    return None


@functools.lru_cache(maxsize=256)
def _schema(adapter: TypeAdapter[Any]) -> JsonSchemaValue:
    return schema_of(adapter)
