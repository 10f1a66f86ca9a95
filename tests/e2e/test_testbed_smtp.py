"""The test-bed Redmine mails its notifications by SMTP to the system's Postfix
(testbed/redmine-testbed, when scripts/setup-mail prepared Postfix for it): Postfix
rewrites mail for the test bed's domains to the local catch-all account m2r-testbed-mail,
whose ~/.forward (testbed/file-notification) files each mail by its recipient into the test
bed's mail_dir, where every test that reads notifications finds it (support.testbed
``notifications``). Mail to a local account's address reaches that account instead; the
conversation test (test_conversation.py) has the relay account's mail reach procmail so."""

from support.testbed import make_issue, notification_about, text_of, wait_for


def test_redmine_sends_its_notifications_through_postfix(postfix, redmine_by_smtp, testbed, token):
    subject = f"Sent through Postfix {token}"
    issue_id = make_issue(testbed, subject)  # kept: a deleted last id is handed out again
    for address in ("dlopes@example.net", "gateway@redmine.test"):
        mail = wait_for(lambda address=address: notification_about(testbed, address, issue_id),
                        f"Redmine's notification of #{issue_id} to {address}")
        assert mail["To"] == address and subject in mail["Subject"]
        received = " ".join(mail.get_all("Received", []))
        assert "127.0.0.1" in received and "(Postfix)" in received, mail.items()
        assert mail["Delivered-To"] is None and mail["X-Original-To"] is None  # left out by the filer
        assert subject in text_of(mail)
