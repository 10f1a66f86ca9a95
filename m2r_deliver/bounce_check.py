"""``check`` with ``[outgoing] from``: a bounce of the program's own mail becomes a private
note on its issue, written as the key's user (``bounce_note.py``). The note holds the
requester's address and the mail system's diagnostic. When that user may not "Set notes
as private" (``set_notes_private``) in the project, Redmine files the note public and says
nothing. An administrator may do everything; for another key, its user's roles in each
served project are read (``/users/current.json?include=memberships``, which ``check``
asks first anyway, and ``/roles/ID.json``).
"""

from __future__ import annotations

from typing import Any

from .config import Settings
from .relay_check import Report, RolePermissions, roles_granting, served_roles

#: The permission that lets a user make a note private.
SET_PRIVATE = "set_notes_private"


def check_bounce_notes(settings: Settings, permissions: RolePermissions, me: dict[str, Any], projects: dict[str, int],
                       report: Report) -> None:
    """*me*: the key's user, read with its memberships; *projects*: the served projects'
    identifiers and ids."""
    if not settings.outgoing.from_address or me.get("admin"):
        return
    label = "bounce notes"
    login = me.get("login", "?")
    for identifier, roles in served_roles(me, projects, report, lambda project: (
            f"{label}: the key's user {login!r} is not a member of project {project!r}; whether the Non member role "
            "may set notes private is not checked")):
        granting, unknown = roles_granting(permissions, roles, SET_PRIVATE, "set notes private", label,
                                           identifier, report)
        if granting:
            report.ok(f"{label} in project {identifier!r} are private: the key's user {login!r} may set notes "
                      f"private through role {granting[0].get('name')!r}")
        elif not unknown:
            report.fail(f"{label} in project {identifier!r} would be public: the key's user {login!r} may not set "
                        "notes private there, and Redmine then files a private note public (the requester's address "
                        "and the diagnostic); give it a role with Set notes as private")
