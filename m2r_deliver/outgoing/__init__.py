"""Outgoing: the mail the program itself sends to requesters.

(the settings, [outgoing] and [acknowledge], are config.outgoing's)
destinations  handing a mail to the mail system: the sendmail program, or SMTP
tokens        our Message-IDs: stable per issue, kind and journal; read back from replies
templates     the operator's text, its placeholders checked
compose       the typed outgoing mail and its encoded bytes
acknowledge   the acknowledgement of a new issue
policy        RFC 3834: whether an automatic answer may be sent at all
answered      the once-per-period record, in an SQLite file the caller opens
"""
