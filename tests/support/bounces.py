"""Bounces as mail systems write them, around a mail the test hands in: Postfix's
multipart/report (the returned mail whole, or only its headers), and the older plain-text
bounce that quotes the returned headers in its text (qmail, Exim without a report)."""

from __future__ import annotations

from support.mails import new_msgid

ENVELOPE = "request+bounces@example.org"
DIAGNOSTIC = "smtp; 550 5.1.1 <taro@example.org>: Recipient address rejected: User unknown"


def report(returned: bytes, recipient: str = "taro@example.org", *, diagnostic: str = DIAGNOSTIC,
           action: str = "failed", status: str = "5.1.1", headers_only: bool = False, to: str = ENVELOPE,
           msgid: str | None = None, extra_headers: str = "") -> bytes:
    """Postfix's bounce (RFC 3464): a human-readable part, message/delivery-status, and the
    returned mail as message/rfc822 (or, *headers_only*, text/rfc822-headers)."""
    boundary = "8C1F2A0B7E.1733077200/mx.example.org"
    returned = returned.replace(b"\r\n", b"\n")
    if headers_only:
        returned = returned.split(b"\n\n", 1)[0] + b"\n"
    returned_type = "text/rfc822-headers" if headers_only else "message/rfc822"
    head = (
        "Return-Path: <>\n"
        f"Delivered-To: {to}\n"
        f"X-Original-To: {to}\n"
        "Date: Tue,  1 Dec 2026 18:20:00 +0000 (UTC)\n"
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        f"To: {to}\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="{boundary}"\n'
        f"Message-Id: <{msgid or new_msgid('bounce')}>\n{extra_headers}\n"
        "This is a MIME-encapsulated message.\n\n"
        f"--{boundary}\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n"
        "This is the mail system at host mx.example.org.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        f"<{recipient}>: host mx.example.org said: 550 5.1.1 unknown user\n\n"
        f"--{boundary}\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.org\nArrival-Date: Tue,  1 Dec 2026 18:19:59 +0000 (UTC)\n\n"
        f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
        f"Action: {action}\nStatus: {status}\nDiagnostic-Code: {diagnostic}\n\n"
        f"--{boundary}\nContent-Description: Undelivered Message\nContent-Type: {returned_type}\n\n"
    )
    return head.encode() + returned + f"\n--{boundary}--\n".encode()


def quoted(returned: bytes, recipient: str = "taro@example.org", *, to: str = ENVELOPE) -> bytes:
    """A bounce with no report part: qmail's text, the returned headers quoted in it."""
    headers = returned.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return (
        "Return-Path: <>\n"
        f"Delivered-To: {to}\n"
        "From: MAILER-DAEMON@mx.example.org\n"
        f"To: {to}\n"
        "Subject: failure notice\n"
        f"Message-ID: <{new_msgid('qmail')}>\n\n"
        "Hi. This is the qmail-send program at mx.example.org.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{recipient}>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n\n"
    ).encode() + headers + b"\n\n(body left out)\n"
