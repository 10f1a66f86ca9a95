"""The relay account (``[relay] user``): the Redmine user whose notifications bring staff's
notes back to the gateway. A new issue filed for an outside requester gets it as a watcher,
so that Redmine mails it every public note of the issue (a Reporter, it is never sent a
private one) and the gateway can pass the note on to the requester.

Who is an outside requester: the issue records someone who asked (the form's requester,
else the sender) whom the gateway did not act as, and who does not watch the issue with an
account of their own. A member filed as themselves, or a requester made a watcher through
their own account, hears from Redmine directly: the relay would only send them every note
twice. An issue without a requester has nobody to relay to.
"""

from __future__ import annotations

from .config import Settings
from .errors import ConfigError
from .identity import Account, Acting, Directory, RequesterRecord, plausible_address
from .plan import Person


def watches(settings: Settings, requester: Person | None, acting: Acting, record: RequesterRecord) -> bool:
    """Whether a new issue filed as *acting* needs the relay account as a watcher."""
    return (settings.relay.enabled and requester is not None and plausible_address(requester.addr)
            and not acting.themselves and not acting.is_address(requester.addr) and record.watcher_id is None)


def account(directory: Directory, settings: Settings) -> Account:
    """The relay account, looked up by login (cached like every user); one that cannot be
    the relay account is the configuration's mistake."""
    login = settings.relay.user
    if not directory.me().admin:
        raise ConfigError(f"the relay account {login!r} cannot be looked up with a key that is not an "
                          "administrator's (Redmine lists users only to administrators)", key="relay.user")
    found = directory.account_by_login(login)
    problem = ("does not exist" if found is None else "is locked" if not found.active
               else "has no e-mail address (Redmine cannot notify it)" if not found.mail else None)
    if found is None or problem:
        raise ConfigError(f"user {login!r} {problem} in Redmine (run: m2r-deliver check)", key="relay.user")
    return found
