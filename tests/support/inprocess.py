"""One delivery pass run in this process, the way the installed program runs it (the
pipeline, a mail's bytes, an exit status), for the fast layer's decisions and faults:
``settings_of(site)`` reads a test site's config as the program would (``settings_for``
writes it first), ``delivered()``
runs the pass and gives its Result with what it wrote on stdout and stderr."""

from __future__ import annotations

import io
from dataclasses import dataclass

from m2r_deliver import pipeline
from m2r_deliver.config import Settings, load
from m2r_deliver.read import read_message


def settings_of(site) -> Settings:
    """The settings the program reads from *site*'s config file, with its home."""
    return load(str(site.config_path), {}, {"HOME": str(site.home)})


#: The [issue] of settings_for's sites.
HELPDESK_SUPPORT = 'project = "helpdesk"\ntracker = "Support"'


def settings_for(site, url: str, extra: str = "", issue: str = HELPDESK_SUPPORT) -> Settings:
    """*site* configured for the Redmine at *url* with *extra* config text, as read back."""
    site.write_config(extra, issue=issue, url=url)
    return settings_of(site)


@dataclass(frozen=True)
class Delivered:
    result: pipeline.Result
    stdout: str
    stderr: str


def delivered(settings: Settings, data: bytes, *, dry_run: bool = False) -> Delivered:
    """Deliver *data* with *settings* in this process."""
    out, err = io.StringIO(), io.StringIO()
    result = pipeline.deliver_one(lambda: read_message(io.BytesIO(data)), out, err, settings,
                                  pipeline.Run(dry_run=dry_run))
    return Delivered(result, out.getvalue(), err.getvalue())


def deliver_quietly(settings: Settings, data: bytes) -> pipeline.Result:
    """Deliver *data*, which a delivery does in silence: nothing on stdout or stderr."""
    done = delivered(settings, data)
    assert done.stdout == done.stderr == "", (done.stdout, done.stderr)
    return done.result
