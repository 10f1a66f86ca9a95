"""Names → ids: the tracker, status, project, member, custom field … a Plan names, as
Redmine's API wants them, looked up through the name cache."""

from __future__ import annotations

from typing import Any, Callable, Iterable, TypeVar

from redminelib import Redmine, exceptions as rx

from ..errors import RedmineRefused
from .cache import NameCache
from .client import translated_errors


T = TypeVar("T")


def _fold(name: str) -> str:
    return " ".join(str(name).split()).casefold()


class Resolver:
    """Turns the names in a Plan into the ids Redmine's API wants."""

    def __init__(self, redmine: Redmine, cache: NameCache):
        self.redmine, self.cache = redmine, cache

    def _id(self, kind: str, name: str, fetch: Callable[[], Iterable[tuple[str, int]]]) -> int | None:
        """The id of *name*; a number is taken as the id."""
        if isinstance(name, int) or str(name).isdigit():
            return int(name)
        return self._lookup(kind, name, fetch)

    def _lookup(self, kind: str, name: str, fetch: Callable[[], Iterable[tuple[str, T]]]) -> T | None:
        ids = self.cache.get(kind)
        if ids is None or _fold(name) not in ids:
            with translated_errors(f"looking up {kind.split(':')[0]} names"):
                ids = {_fold(k): v for k, v in fetch()}
            self.cache.put(kind, ids)
        return ids.get(_fold(name))

    def tracker(self, name: str) -> int | None:
        return self._id("trackers", name, lambda: ((t.name, t.id) for t in self.redmine.tracker.all()))

    def status(self, name: str) -> int | None:
        return self._id("statuses", name, lambda: ((s.name, s.id) for s in self.redmine.issue_status.all()))

    def priority(self, name: str) -> int | None:
        return self._id(
            "priorities", name,
            lambda: ((p.name, p.id) for p in self.redmine.enumeration.filter(resource="issue_priorities")),
        )

    def category(self, project: str, name: str) -> int | None:
        return self._id(
            f"categories:{project}", name,
            lambda: ((c.name, c.id) for c in self.redmine.issue_category.filter(project_id=project)),
        )

    def version(self, project: str, name: str) -> int | None:
        return self._id(
            f"versions:{project}", name,
            lambda: ((v.name, v.id) for v in self.redmine.version.filter(project_id=project)),
        )

    def member(self, project: str, name: str) -> int | None:
        """A project member (user or group) by login, e-mail, or full name."""

        def members():
            for m in self.redmine.project_membership.filter(project_id=project):
                who = getattr(m, "user", None) or getattr(m, "group", None)
                if who is not None:
                    yield who.name, who.id
            try:
                for u in self.redmine.user.all():
                    yield u.login, u.id
                    yield u.mail, u.id
            except rx.ForbiddenError:
                pass  # listing users needs an admin key; names of members still work

        return self._id(f"members:{project}", name, members)

    def custom_field(self, name: str) -> dict[str, Any] | None:
        """An issue custom field: its id, whether it takes several values, and for a list
        field the values it allows. A number is taken as the id."""
        if str(name).isdigit():
            return {"id": int(name), "multiple": False, "values": []}

        def fields():
            try:
                return [(f.name, _definition(f)) for f in self.redmine.custom_field.all()
                        if f.customized_type == "issue"]
            except rx.ForbiddenError:
                return []  # listing custom fields needs an admin key

        return self._lookup("custom_field_definitions", name, fields)

    def group(self, name: str) -> int | None:
        def groups():
            try:
                return [(g.name, g.id) for g in self.redmine.group.all()]
            except rx.ForbiddenError:
                return []  # listing groups needs an admin key

        return self._id("groups", name, groups)

    def attribute(self, project: str, name: str, value: Any) -> dict[str, Any] | None:
        """The API's attributes for one named attribute; None when Redmine has no such name."""
        lookups: dict[str, tuple[str, Callable[[Any], int | None]]] = {
            "tracker": ("tracker_id", self.tracker),
            "status": ("status_id", self.status),
            "priority": ("priority_id", self.priority),
            "category": ("category_id", lambda n: self.category(project, n)),
            "fixed_version": ("fixed_version_id", lambda n: self.version(project, n)),
            "assigned_to": ("assigned_to_id", lambda n: self.member(project, n)),
        }
        if name in lookups:
            key, lookup = lookups[name]
            found = lookup(value)
            return None if found is None else {key: found}
        if name == "private":
            return {"is_private": bool(value)}
        if name == "parent_issue":
            return {"parent_issue_id": value}
        return {name: value}

    def find_project(self, identifier: str) -> int | None:
        return self._id(
            "projects", identifier,
            lambda: ((key, p.id) for p in self.redmine.project.all() for key in (p.identifier, p.name)),
        )

    def project(self, identifier: str) -> int:
        found = self.find_project(identifier)
        if found is None:
            raise RedmineRefused(f"project {identifier!r} does not exist or the key's user cannot see it", status=404)
        return found


def _definition(field) -> dict[str, Any]:
    values = [v.get("value") for v in getattr(field, "possible_values", None) or [] if isinstance(v, dict)]
    return {"id": field.id, "multiple": bool(getattr(field, "multiple", False)), "values": values,
            "format": getattr(field, "field_format", None)}


def resolve_fields(resolver: Resolver, project: str, fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The API's issue attributes for *fields*, and the names that did not resolve."""
    api: dict[str, Any] = {"project_id": resolver.project(project)}
    unknown: list[str] = []
    for name, value in fields.items():
        if name == "custom_fields":
            entries = []
            for cf_name, cf_value in value.items():
                definition = resolver.custom_field(cf_name)
                if definition is None:
                    unknown.append(f"custom field {cf_name!r}")
                else:
                    entries.append({"id": definition["id"], "value": cf_value})
            if entries:
                api["custom_fields"] = entries
            continue
        resolved = resolver.attribute(project, name, value)
        if resolved is None:
            unknown.append(f"{name} {value!r}")
        else:
            api.update(resolved)
    return api, unknown
