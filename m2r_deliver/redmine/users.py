"""The user directory identity.py asks: accounts by address or login, what they may do
in a project, new accounts.

An address or login without an account is remembered like one with an account, for
``cache_ttl`` seconds: the help-desk address among the recipients (looked up as a
possible watcher) costs no request on every mail. An account made in Redmine meanwhile
is found once that entry expires; one this program makes replaces it at once.
"""

from __future__ import annotations

from typing import Any

from redminelib import Redmine

from ..errors import ConfigError, RedmineRefused
from ..identity import Account, NewAccount, random_login
from .client import translated_errors
from .names import Resolver


class Directory:
    """Redmine's users for identity.py: accounts by address or login, what they may do,
    new accounts. Cached in the name cache; all but ``me`` need an admin key."""

    def __init__(self, redmine: Redmine, resolver: Resolver):
        self.redmine, self.resolver, self.cache = redmine, resolver, resolver.cache

    def me(self) -> Account:
        entry = self.cache.get("me")
        if entry is None:
            with translated_errors("asking who the key belongs to"):
                entry = _account_entry(self.redmine.user.get("current").raw())
            self.cache.put("me", entry)
        return Account(**entry)

    def account_by_mail(self, addr: str) -> Account | None:
        return self._find(f"account:{addr.lower()}", addr, lambda u: (u.get("mail") or "").lower() == addr.lower())

    def account_by_login(self, login: str) -> Account | None:
        return self._find(f"login:{login.lower()}", login, lambda u: u.get("login", "").lower() == login.lower())

    def forget(self, account: Account) -> None:
        """Drop what is cached about *account* (Redmine said it changed)."""
        for kind in (f"account:{account.mail.lower()}", f"login:{account.login.lower()}", f"memberships:{account.id}"):
            self.cache.drop(kind)

    def _find(self, kind: str, name: str, matches) -> Account | None:
        """Search users of any status by *name*, keep the exact match, and read it whole
        (the list does not say whether a user is locked or an administrator)."""
        entry = self.cache.get(kind)
        if entry is not None:
            return None if entry == _NO_ACCOUNT else Account(**entry)
        with translated_errors(f"looking up the Redmine user {name}"):
            found = [u.raw() for u in self.redmine.user.filter(name=name, status="")]
        exact = [u for u in found if matches(u)]
        if not exact:
            self.cache.put(kind, _NO_ACCOUNT)
            return None
        return self._read(int(exact[0]["id"]))

    def _read(self, user_id: int) -> Account:
        with translated_errors(f"reading Redmine user {user_id}"):
            raw = self.redmine.user.get(user_id, include=["memberships"]).raw()
        entry = _account_entry(raw)
        self.cache.put(f"account:{entry['mail'].lower()}", entry)
        self.cache.put(f"login:{entry['login'].lower()}", entry)
        self.cache.put(f"memberships:{entry['id']}", {
            str(m["project"]["id"]): [r["id"] for r in m.get("roles", [])] for m in raw.get("memberships", [])
        })
        return Account(**entry)

    def may(self, account: Account, project_id: int, permissions: tuple[str, ...]) -> bool | None:
        """Whether one of *permissions* is granted by the account's roles in the project;
        None for a non-member of a public project (Redmine's non-member role decides)."""
        if account.admin:
            return True
        memberships = self.cache.get(f"memberships:{account.id}")
        if memberships is None:
            self._read(account.id)
            memberships = self.cache.get(f"memberships:{account.id}") or {}
        roles = memberships.get(str(project_id))
        if roles is None:
            return None if self.project(project_id).get("is_public") else False
        granted = {p for role in roles for p in self._role_permissions(role)}
        return any(p in granted for p in permissions)

    def _role_permissions(self, role_id: int) -> list[str]:
        entry = self.cache.get(f"role:{role_id}")
        if entry is None:
            with translated_errors(f"reading role {role_id}"):
                entry = {"permissions": list(self.redmine.role.get(role_id).raw().get("permissions", []))}
            self.cache.put(f"role:{role_id}", entry)
        return entry["permissions"]

    def project(self, project_id: int) -> dict[str, Any]:
        """``is_public`` and ``status`` (1 active, 5 closed, 9 archived) of a project."""
        entry = self.cache.get(f"project:{project_id}")
        if entry is None:
            with translated_errors(f"reading project {project_id}"):
                raw = self.redmine.project.get(project_id).raw()
            entry = {"is_public": bool(raw.get("is_public")), "status": int(raw.get("status", 1))}
            self.cache.put(f"project:{project_id}", entry)
        return entry

    def create_account(self, new: NewAccount) -> Account:
        """Create the account (its groups must exist first), the way Redmine's mail
        handler does: generated password, account mail unless told not to."""
        group_ids = [self.resolver.group(name) for name in new.groups]
        unknown = [name for name, gid in zip(new.groups, group_ids, strict=True) if gid is None]
        if unknown:
            raise ConfigError(f"unknown group(s) {', '.join(unknown)}", key="sender.default_group")
        user_id = self._post_user(new, new.login)
        for group_id in group_ids:
            with translated_errors(f"adding user {user_id} to group {group_id}"):
                self.redmine.engine.request("post", f"{self.redmine.url}/groups/{group_id}/users.json",
                                            data={"user_id": user_id})
        return self._read(user_id)

    def _post_user(self, new: NewAccount, login: str) -> int:
        body = {
            "user": {"login": login, "firstname": new.firstname, "lastname": new.lastname, "mail": new.mail,
                     "generate_password": True, "mail_notification": new.mail_notification},
            "send_information": new.send_information,
        }
        try:
            with translated_errors(f"creating the Redmine account {login}"):
                return int(self.redmine.engine.request("post", f"{self.redmine.url}/users.json", data=body)
                           ["user"]["id"])
        except RedmineRefused as exc:
            self.cache.drop(f"account:{new.mail.lower()}")
            existing = self.account_by_mail(new.mail)  # made meanwhile by another delivery
            if existing:
                return existing.id
            if exc.status == 422 and "login" in exc.reason.lower() and login == new.login:
                return self._post_user(new, random_login())
            raise


#: The cache entry of a name Redmine has no user for.
_NO_ACCOUNT: dict[str, Any] = {"none": True}


def _account_entry(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(raw["id"]),
        "login": raw.get("login", ""),
        "mail": (raw.get("mail") or "").lower(),
        "active": int(raw.get("status", 1)) == 1,
        "admin": bool(raw.get("admin")),
    }
