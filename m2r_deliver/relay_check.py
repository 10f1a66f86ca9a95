"""``check`` with ``[relay] enabled``: the relay account can be the relay account.

It must exist, be active and have an address (else Redmine never notifies it), and it must
not be allowed "View private notes" (``view_private_notes``) in a project the gateway
serves: Redmine sends a private note to every watcher allowed to see it, and the relay
would pass that note on to the requester. The REST reads: the user with its memberships
(``/users/ID.json?include=memberships``), each of its roles' permissions (``/roles/ID.json``).
Only an administrator's key can find a user by login.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .config import Settings
from .errors import DeliveryError

#: The permission that lets Redmine send a user private notes.
PRIVATE_NOTES = "view_private_notes"


class Report(Protocol):
    def ok(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def fail(self, text: str) -> None: ...


def check_relay(settings: Settings, connection, api, roles: RolePermissions, projects: dict[str, int], admin: bool,
                report: Report) -> None:
    """*projects*: the served projects' identifiers and ids."""
    if not settings.relay.enabled:
        return
    login = settings.relay.user
    label = f"[relay] user {login!r}"
    if not admin:
        report.fail(f"{label}: a key that is not an administrator's cannot look the account up (Redmine lists "
                    "users only to administrators), so neither deliveries nor this check can find it")
        return
    directory = api.Directory(connection, api.Resolver(connection, api.NameCache(settings.state_dir / "names.json",
                                                                                   0, settings.url)))
    try:
        account = directory.account_by_login(login)
        raw = _user(connection, api, account.id) if account else None
    except DeliveryError as exc:
        report.fail(f"{label}: {exc.reason}")
        return
    if account is None or raw is None:
        report.fail(f"{label} does not exist in Redmine: create it (a Reporter in the served projects, notified "
                    "only of the issues it watches, with an address that reaches the gateway)")
        return
    problems = [*(["is locked"] if not account.active else []),
                *(["has no e-mail address: Redmine cannot notify it"] if not account.mail else []),
                *(["is an administrator: Redmine would send it private notes"] if account.admin else [])]
    for problem in problems:
        report.fail(f"{label} {problem}")
    if not problems:
        report.ok(f"{label} is #{account.id}, active, notified at {account.mail}")
    if not account.admin:
        _check_private_notes(roles, label, raw, projects, report)


def _user(connection, api, user_id: int) -> dict[str, Any] | None:
    with api.translated_errors(f"reading Redmine user {user_id}"):
        return connection.user.get(user_id, include=["memberships"]).raw()


def _check_private_notes(permissions: RolePermissions, label: str, raw: dict[str, Any], projects: dict[str, int],
                         report: Report) -> None:
    """No role of the account in a served project may view private notes."""
    clean = []
    for identifier, roles in served_roles(raw, projects, report, lambda project: (
            f"{label} is not a member of project {project!r}: Redmine notifies it only of the issues there that "
            "the Non member role lets it see (that role's permissions are not checked)")):
        leaky, unknown = roles_granting(permissions, roles, PRIVATE_NOTES, "view private notes", label,
                                        identifier, report)
        for role in leaky:
            report.fail(f"{label} may view private notes in project {identifier!r} through role {role.get('name')!r}"
                        f"{' (inherited from a group)' if role.get('inherited') else ''}: the relay would mail "
                        "private notes to requesters; give the account a role without View private notes")
        if not leaky and not unknown:
            clean.append(identifier)
    if clean:
        report.ok(f"{label} cannot view private notes in {', '.join(repr(p) for p in clean)}")


def served_roles(raw: dict[str, Any], projects: dict[str, int], report: Report,
                 not_a_member: Callable[[str], str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each served project (*projects*: identifier → id) the user *raw* (read with its
    memberships) is a member of, with its roles there; each other one is a warning,
    ``not_a_member(identifier)``."""
    roles_in = {int(m["project"]["id"]): m.get("roles", []) for m in raw.get("memberships", []) if m.get("project")}
    for identifier, project_id in projects.items():
        roles = roles_in.get(project_id)
        if roles is None:
            report.warn(not_a_member(identifier))
        else:
            yield identifier, roles


class RolePermissions:
    """Each role's permissions (``/roles/ID.json``), read from Redmine once however many
    served projects and checks ask about it."""

    def __init__(self, connection, api):
        self._connection, self._api = connection, api
        self._read: dict[int, tuple[list[str] | None, str]] = {}

    def of(self, role_id: int) -> tuple[list[str] | None, str]:
        """The role's permissions, or None with the reason they are not known."""
        if role_id not in self._read:
            try:
                with self._api.translated_errors(f"reading role {role_id}"):
                    permissions = self._connection.role.get(role_id).raw().get("permissions")
            except DeliveryError as exc:
                self._read[role_id] = (None, exc.reason)
            else:
                self._read[role_id] = (permissions, "Redmine did not list its permissions")
        return self._read[role_id]


def roles_granting(permissions: RolePermissions, roles: list[dict[str, Any]], permission: str, what: str, label: str,
                   identifier: str, report: Report) -> tuple[list[dict[str, Any]], bool]:
    """Which of *roles* (a membership's, in project *identifier*) grant *permission*; and
    whether some role's permissions could not be read (each such role is a warning:
    "*label*: whether role R may *what* in project P is not checked")."""
    granting, unknown = [], False
    for role in roles:
        granted, why = permissions.of(role["id"])
        if granted is None:
            unknown = True
            report.warn(f"{label}: whether role {role.get('name')!r} may {what} in project {identifier!r} "
                        f"is not checked: {why}")
        elif permission in granted:
            granting.append(role)
    return granting, unknown
