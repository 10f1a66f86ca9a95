"""Redmine's names given as dicts, for the keyword rules without HTTP (keyed.Names)."""

from __future__ import annotations

from typing import Any

from m2r_deliver.keyed import Names


class DictNames:
    """Names from dicts: projects by identifier, custom field definitions by name, and
    per attribute the values Redmine knows and the id each stands for."""

    def __init__(self, projects: dict[str, int], fields: dict[str, dict[str, Any]],
                 values: dict[str, dict[str, int]]):
        self.projects, self.fields, self.values = projects, fields, values

    def find_project(self, identifier: str) -> int | None:
        return self.projects.get(identifier)

    def custom_field(self, name: str) -> dict[str, Any] | None:
        return self.fields.get(name)

    def attribute(self, project: str, name: str, value: Any) -> dict[str, Any] | None:
        if name not in self.values:
            return {name: value}
        found = self.values[name].get(value)
        return None if found is None else {f"{name}_id": found}


NAMES: Names = DictNames(
    projects={"helpdesk": 1, "ops": 2},
    fields={"Severity": {"id": 7, "multiple": False, "values": ["Low", "High"]},
            "Tags": {"id": 8, "multiple": True, "values": ["red", "blue"]}},
    values={"priority": {"High": 3, "Low": 1}, "tracker": {"Bug": 1}},
)
