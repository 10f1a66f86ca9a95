"""A small in-process Redmine for the fast layer: it speaks the few REST calls a delivery
makes (names, the key's user, users by address, an issue, creating an issue, adding a
note), keeps what it was asked to write, and answers every other request 404. Its answers
follow the test-bed Redmine's; the real-Redmine tests of the same decisions keep it honest.

    with FakeRedmine() as redmine:
        redmine.issues[12] = {"project": "helpdesk", "subject": "VPN"}
        redmine.issues[13] = {"project": "helpdesk", "subject": "Old", "status": "Closed",
                              "closed_on": "2026-01-05T10:00:00Z", "marker": "<first@host-a>"}
        ... deliver with url = redmine.url ...
        redmine.created, redmine.updated, redmine.relations

A PUT's ``status_id`` becomes the issue's status, unless ``status_refusal`` says how its
workflow refuses it: "422" (an error), or "ignore" (Redmine's silent way).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PROJECTS = {"helpdesk": 1, "ops": 2}
TRACKERS = {"Bug": 1, "Feature": 2, "Support": 3}
STATUSES = {"New": 1, "In Progress": 2, "Resolved": 3, "Feedback": 4, "Closed": 5, "Rejected": 6}
CLOSED = {"Closed", "Rejected"}
PRIORITIES = {"Low": 1, "Normal": 2, "High": 3, "Urgent": 4}
VERSIONS = {"1.0": 7}
#: id → (name, format, multiple, possible values)
CUSTOM_FIELDS = {1: ("Message-ID", "string", False, ()), 5: ("Database", "list", False, ("MySQL", "PostgreSQL")),
                 7: ("Affected version", "version", False, ())}
ADMIN = {"id": 1, "login": "admin", "firstname": "Redmine", "lastname": "Admin", "mail": "admin@redmine.test",
         "admin": True, "status": 1}
JSMITH = {"id": 2, "login": "jsmith", "firstname": "John", "lastname": "Smith", "mail": "jsmith@example.net",
          "admin": False, "status": 1, "memberships": [{"project": {"id": 1, "name": "Helpdesk"},
                                                         "roles": [{"id": 3, "name": "Manager"}]}]}

RELAY = {"id": 144, "login": "relay", "firstname": "Mail", "lastname": "Relay", "mail": "relay@redmine.test",
         "admin": False, "status": 1, "memberships": [{"project": {"id": 1, "name": "Helpdesk"},
                                                       "roles": [{"id": 5, "name": "Reporter"}]}]}


class FakeRedmine:
    def __init__(self, refuse_create: tuple[int, dict] | None = None):
        #: Issues it knows: id → {"project": identifier, "subject": …}; "journals",
        #: "attachments", "description", "custom_fields", "tracker" and "status" are answered
        #: as given (the REST API's shapes).
        self.issues: dict[int, dict] = {}
        #: Attachment contents by id (GET /attachments/download/ID).
        self.files: dict[int, bytes] = {}
        #: Users it knows besides the admin and jsmith.
        self.users: list[dict] = [RELAY]
        #: What it was asked to write: the bodies of POST /issues.json and PUT /issues/N.json.
        self.created: list[dict] = []
        self.updated: list[tuple[int, dict]] = []
        #: (issue id, user id) of every POST /issues/N/watchers.json.
        self.watched: list[tuple[int, int]] = []
        #: Every request: (method, path without the query).
        self.seen: list[tuple[str, str]] = []
        self.refuse_create = refuse_create
        #: (issue id, related issue id) of every relation made.
        self.relations: list[tuple[int, int]] = []
        self.status_refusal: str | None = None
        self._next_id = 100
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = fake._answer(self.command, self.path, body)
                raw = isinstance(answer, bytes)
                data = answer if raw else json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeRedmine":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.seen if method != "GET"]

    def _answer(self, method: str, target: str, body: bytes) -> tuple[int, dict | bytes | None]:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        self.seen.append((method, path))
        named = {
            "/trackers.json": ("trackers", TRACKERS),
            "/issue_statuses.json": ("issue_statuses", STATUSES),
            "/enumerations/issue_priorities.json": ("issue_priorities", PRIORITIES),
        }
        if method == "GET" and path in named:
            key, names = named[path]
            return 200, {key: [{"id": i, "name": n} for n, i in names.items()]}
        if method == "GET" and path == "/projects.json":
            projects = [{"id": i, "identifier": p, "name": p.capitalize(), "status": 1} for p, i in PROJECTS.items()]
            return 200, {"projects": projects, "total_count": len(projects), "offset": 0, "limit": 100}
        if method == "GET" and re.fullmatch(r"/projects/[^/]+/versions\.json", path):
            return 200, {"versions": [{"id": i, "name": n} for n, i in VERSIONS.items()], "total_count": 1}
        if method == "GET" and path == "/custom_fields.json":
            return 200, {"custom_fields": [
                {"id": i, "name": n, "customized_type": "issue", "field_format": f, "multiple": m,
                 **({"possible_values": [{"value": v} for v in values]} if values else {})}
                for i, (n, f, m, values) in CUSTOM_FIELDS.items()]}
        if method == "GET" and path == "/users/current.json":
            return 200, {"user": ADMIN}
        if method == "GET" and path == "/users.json":
            name = (query.get("name") or [""])[0].casefold()
            users = [u for u in (ADMIN, JSMITH, *self.users) if name and name in (u["mail"], u["login"])]
            return 200, {"users": users, "total_count": len(users), "offset": 0, "limit": 25}
        if method == "GET" and (match := re.fullmatch(r"/users/(\d+)\.json", path)):
            user = {u["id"]: u for u in (ADMIN, JSMITH, *self.users)}.get(int(match.group(1)))
            return (200, {"user": user}) if user else (404, None)
        if method == "GET" and path == "/roles/3.json":
            return 200, {"role": {"id": 3, "name": "Manager",
                                  "permissions": ["add_issues", "edit_issues", "add_issue_notes", "view_issues"]}}
        if method == "GET" and path == "/issues.json":
            wanted = (query.get("v[cf_1][]") or [None])[0]  # the marker field's filter (find_by_marker)
            found = [{"id": i, "subject": known["subject"], "custom_fields": [{"id": 1, "value": known["marker"]}]}
                     for i, known in self.issues.items() if wanted is not None and known.get("marker") == wanted]
            # without a marker field, an attempt that may have filed already searches by subject
            subject = (query.get("subject") or [""])[0].removeprefix("~")
            if subject and query.get("offset", ["0"])[0] == "0":
                found += [{"id": 101 + n, **fields} for n, fields in enumerate(self.created)
                          if subject in fields.get("subject", "")]
            return 200, {"issues": found, "total_count": len(found), "offset": 0, "limit": 100}
        if method == "POST" and (match := re.fullmatch(r"/issues/(\d+)/watchers\.json", path)):
            self.watched.append((int(match.group(1)), int(json.loads(body)["user_id"])))
            return 204, None
        if (match := re.fullmatch(r"/issues/(\d+)\.json", path)) and method in ("GET", "PUT"):
            issue_id = int(match.group(1))
            if issue_id not in self.issues:
                return 404, None
            known = self.issues[issue_id]
            if method == "PUT":
                fields = json.loads(body)["issue"]
                if "status_id" in fields and self.status_refusal == "422":
                    return 422, {"errors": ["Status is invalid"]}
                self.updated.append((issue_id, fields))
                if "status_id" in fields and self.status_refusal != "ignore":
                    known["status"] = next(n for n, i in STATUSES.items() if i == fields["status_id"])
                return 204, None
            project = known["project"]
            status = known.get("status", "New")
            if isinstance(status, str):  # a name; or the whole answer, as a test gives it
                status = {"id": STATUSES[status], "name": status, "is_closed": status in CLOSED}
            given = {k: known[k] for k in ("journals", "attachments", "description", "custom_fields", "tracker",
                                           "closed_on", "author") if k in known}
            return 200, {"issue": {"id": issue_id, "subject": known["subject"], "journals": [], "watchers": [],
                                   "project": {"id": PROJECTS[project], "name": project.capitalize()},
                                   "status": status, "updated_on": known.get("updated_on", "2026-11-30T09:00:00Z"),
                                   **given}}
        if method == "GET" and (match := re.fullmatch(r"/attachments/download/(\d+)", path)):
            found = self.files.get(int(match.group(1)))
            return (200, found) if found is not None else (404, None)
        if method == "POST" and (match := re.fullmatch(r"/issues/(\d+)/relations\.json", path)):
            pair = (int(match.group(1)), json.loads(body)["relation"]["issue_to_id"])
            if pair in self.relations:
                return 422, {"errors": ["This relation would create a circular dependency"]}
            self.relations.append(pair)
            return 201, {"relation": {"id": len(self.relations), "issue_id": pair[0], "issue_to_id": pair[1],
                                      "relation_type": "relates"}}
        if method == "GET" and (match := re.fullmatch(r"/issues/(\d+)/relations\.json", path)):
            issue_id = int(match.group(1))
            return 200, {"relations": [{"issue_id": a, "issue_to_id": b, "relation_type": "relates"}
                                       for a, b in self.relations if issue_id in (a, b)]}
        if method == "GET" and (match := re.fullmatch(r"/projects/(\w+)\.json", path)):
            ident = match.group(1)
            key = ident if ident in PROJECTS else next((p for p, i in PROJECTS.items() if str(i) == ident), None)
            return (200, {"project": {"id": PROJECTS[key], "identifier": key, "name": key.capitalize(),
                                      "status": 1}}) if key else (404, None)
        if method == "POST" and path.endswith("/issues.json"):
            if self.refuse_create:
                return self.refuse_create
            fields = json.loads(body)["issue"]
            if match := re.fullmatch(r"/projects/(\d+)/issues\.json", path):  # python-redmine names it in the path
                fields.setdefault("project_id", int(match.group(1)))
            self.created.append(fields)
            self._next_id += 1
            return 201, {"issue": {"id": self._next_id, **fields}}
        return 404, None
