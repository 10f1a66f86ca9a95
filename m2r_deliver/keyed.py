"""Keyword rules: which of a mail's keyword lines Redmine knows, the API attributes they
set over the configured values, and why the others change nothing.

No HTTP here: names are resolved through a ``Names`` object (in delivery,
redmine.names.Resolver; in tests, a dict will do).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from .errors import ConfigError, RedmineRefused
from .plan import Keyword, Plan
from .valueclass import replace, valueclass


class Names(Protocol):
    """What the keyword rules ask of Redmine's names."""

    def find_project(self, identifier: str) -> int | None:
        """The project's id, None when there is no such project."""

    def custom_field(self, name: str) -> dict[str, Any] | None:
        """An issue custom field: ``{"id", "multiple", "values", "format"}``; None when unknown."""

    def attribute(self, project: str, name: str, value: Any) -> dict[str, Any] | None:
        """The API attributes one named attribute sets in *project*; None when unknown."""


def custom_field_value(definition: dict[str, Any], text: str) -> Any:
    """A keyword's text as the value of a custom field, read the way Redmine reads it: a
    list field's values matched without regard to case, several of them comma-separated
    when the field takes several; any other field takes the text. None: not a value."""
    choices = definition.get("values") or []
    if not choices:
        return text
    wanted = [w.strip() for w in text.split(",")] if definition.get("multiple") else [text.strip()]
    values = [next((c for c in choices if c.casefold() == w.casefold()), None) for w in wanted if w]
    if not values or None in values:
        return None
    return values if definition.get("multiple") else values[0]


@valueclass(frozen=True, eq=False)
class Keyed:
    """What a mail's keywords change: the project, each keyword Redmine knows with the
    API attributes it sets, and why the others change nothing."""

    project: str | None
    applied: tuple[tuple[Keyword, dict[str, Any]], ...]
    warnings: tuple[str, ...]

    def over(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """The API attributes: the applied keywords' over *defaults*."""
        result = defaults
        for _, fields in self.applied:
            result = merged(result, fields)
        return result

    @property
    def lines(self) -> set[int]:
        """The description lines of the applied keywords."""
        return {keyword.line for keyword, _ in self.applied}

    def without(self, keywords: list[Keyword], reason: str) -> Keyed:
        return replace(self, applied=tuple(a for a in self.applied if a[0] not in keywords),
                       warnings=(*self.warnings, *(f"{k.name or k.attribute} {k.value!r} {reason}" for k in keywords)))


@valueclass(frozen=True, eq=False)
class Limits:
    """What no keyword may do, whatever [issue] allow_override says."""

    #: Whether a project (by id) is one the gateway serves; None: any.
    serves: Callable[[int], bool] | None = None
    #: Custom fields (by id) the gateway keeps for itself: the marker, the requester field.
    reserved_fields: frozenset[int] = frozenset()


def configured_project(names: Names, plan: Plan) -> tuple[str | None, tuple[str, ...]]:
    """The project a new issue goes to before its keywords, and a warning when the mail's
    sub-address named one that does not exist. A configured project Redmine lacks is the
    config's mistake (retried until fixed); a sub-address's is the mail's, and the
    configured project takes it."""
    project = plan.project
    if not project or names.find_project(project) is not None:
        return project, ()
    if project != plan.default_project:
        if not plan.default_project:
            raise RedmineRefused(f"project {project!r} of the sub-address does not exist or the key's user cannot "
                                 "see it", status=404)
        if names.find_project(plan.default_project) is not None:
            return plan.default_project, (f"project {project!r} of the sub-address unknown: filed in "
                                          f"{plan.default_project}",)
        project = plan.default_project
    raise ConfigError(f"project {project!r} does not exist in Redmine or the key's user cannot see it "
                      "(run: m2r-deliver check)", key=plan.route)


def resolve_keywords(resolver: Names, project: str | None, keywords: tuple[Keyword, ...],
                     limits: Limits = Limits()) -> Keyed:
    """Each keyword Redmine knows the value of; an unknown value leaves the default in
    place and says so. Never raises for a value the mail got wrong."""
    warnings: list[str] = []
    applied: list[tuple[Keyword, dict[str, Any]]] = []
    for keyword in keywords:
        if keyword.attribute == "project":
            found = resolver.find_project(keyword.value)
            if found is None:
                warnings.append(f"project {keyword.value!r} unknown: filed in {project or 'no project'}")
            elif limits.serves is not None and not limits.serves(found):
                warnings.append(f"project {keyword.value!r} is not one this gateway serves: filed in "
                                f"{project or 'no project'}")
            else:
                project = keyword.value
                applied.append((keyword, {}))
    for keyword in keywords:
        if keyword.attribute == "project" or project is None:
            continue
        fields, problem = _keyword_fields(resolver, project, keyword, limits.reserved_fields)
        if fields is not None:
            applied.append((keyword, fields))
        elif problem:
            warnings.append(problem)
    return Keyed(project, tuple(applied), tuple(warnings))


def _keyword_fields(resolver: Names, project: str, keyword: Keyword, reserved: frozenset[int],
                    ) -> tuple[dict[str, Any] | None, str | None]:
    """The API attributes one keyword sets; or None, and why (None when a line that only
    looked like a custom field turns out to be ordinary text)."""
    if keyword.attribute != "custom_field":
        resolved = resolver.attribute(project, keyword.attribute, keyword.value)
        return resolved, None if resolved else f"{keyword.attribute} {keyword.value!r} unknown: ignored"
    definition = resolver.custom_field(keyword.name)
    if definition is None:
        return None, None if keyword.speculative else f"custom field {keyword.name!r} unknown: ignored"
    if definition["id"] in reserved:
        return None, f"custom field {keyword.name!r} is kept by the gateway, never set by a mail: ignored"
    value = custom_field_value(definition, keyword.value)
    if value is not None and definition.get("format") == "version":  # named, stored as the version's id
        version = resolver.attribute(project, "fixed_version", value.strip())
        value = version["fixed_version_id"] if version else None
    if value is None:
        return None, f"custom field {keyword.name!r}: {keyword.value!r} is not one of its values: ignored"
    return {"custom_fields": [{"id": definition["id"], "value": value}]}, None


def merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """*defaults* with *overrides* laid over them, custom fields merged by id."""
    result = {**defaults, **overrides}
    if "custom_fields" in defaults and "custom_fields" in overrides:
        by_id = {entry["id"]: entry for entry in (*defaults["custom_fields"], *overrides["custom_fields"])}
        result["custom_fields"] = list(by_id.values())
    return result
