"""Redmine's REST API: the only package that talks HTTP, imported only when a mail is
about to be filed, so the drop path never pays for ``requests``.

One module per job:

- ``client``: the connection, its enforced timeout, and the one translation of network
  and HTTP failures into our exception classes;
- ``cache``: the short-lived name cache in the state directory;
- ``names``: names (tracker, status, project, member, custom field …) to ids;
- ``issues``: create an issue, add a note or a watcher, read the issue a reply answers;
- ``uploads``: attachments streamed to Redmine, refusals turned into left-out files;
- ``users``: the user directory identity.py asks (accounts, permissions, new accounts);
- ``find``: the issue an earlier attempt filed, and the marker field's checks.

The names ``check`` uses are gathered here.
"""

from .cache import NameCache
from .client import connect, translated_errors
from .find import custom_field_definition, find_by_marker, visible_issue_count
from .names import Resolver, resolve_fields
from .users import Directory

__all__ = ["Directory", "NameCache", "Resolver", "connect", "custom_field_definition", "find_by_marker",
           "resolve_fields", "translated_errors", "visible_issue_count"]
