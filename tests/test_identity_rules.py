"""The pure identity rules: Authentication-Results, new accounts, watchers, form fields,
what is recorded of the requester. (Filing as users is in test_identity.py.)"""


import pytest

from support.mails import make_mail, parsed
from m2r_deliver import form
from m2r_deliver.config import Route, Settings
from m2r_deliver.identity import Account, Acting, authenticate, new_account, record_requester, watcher_addresses
from m2r_deliver.plan import Person

SETTINGS = Settings(url="http://r.example", key="k")


def results(*values, sender="John Smith <jsmith@example.org>"):
    data = make_mail(sender=sender)
    extra = b"".join(b"Authentication-Results: " + v.encode() + b"\n" for v in values)
    return parsed(extra + data)


@pytest.mark.parametrize("header,trusted", [
    ("mx.example.org; dkim=pass header.d=example.org header.s=s1", True),
    ("mx.example.org 1; dkim=pass (2048-bit key; unprotected) header.d=example.org", True),
    ("mx.example.org; dkim=pass header.i=@example.org", True),
    ("MX.Example.Org; spf=pass (sender SPF authorized) smtp.mailfrom=bounce@example.org", True),
    ("mx.example.org; dmarc=pass (p=reject) header.from=example.org", True),
    ("mx.example.org; dkim=pass header.d=mail.example.org", False),  # a subdomain does not speak for the parent
    ("mx.example.org; dkim=pass header.d=org", False),
    ("mx.example.org; dkim=pass header.d=attacker.example", False),
    ("mx.example.org; dkim=fail header.d=example.org; spf=softfail smtp.mailfrom=x@example.org", False),
    ("mx.example.org; spf=pass smtp.helo=example.org", False),
    ("mx.example.org; none", False),
    ("elsewhere.example; dkim=pass header.d=example.org", False),
])
def test_authentication_results(header, trusted):
    assert authenticate(results(header), "mx.example.org")[0] is trusted


def test_sender_in_a_subdomain_is_covered_by_its_parents_signature():
    mail = results("mx.example.org; dkim=pass header.d=example.org", sender="a@tokyo.example.org")
    assert authenticate(mail, "mx.example.org") == (True, "dkim=pass header.d=example.org")


def test_without_authserv_id_every_from_is_trusted_and_without_header_none_is():
    assert authenticate(results(), None) == (True, None)
    assert authenticate(results(), "mx.example.org") == (False, "no Authentication-Results from mx.example.org")
    trusted, finding = authenticate(results("mx.example.org; dkim=fail header.d=example.org"), "mx.example.org")
    assert not trusted and "dkim=fail" in finding


@pytest.mark.parametrize("addr,name,login,first,last", [
    # Redmine's own table (mail_handler_test.rb, test_new_user_from_attributes_should_return_valid_user)
    ("jsmith@example.net", "", "jsmith@example.net", "jsmith", "-"),
    ("jsmith@example.net", "John", "jsmith@example.net", "John", "-"),
    ("jsmith@example.net", "John Smith", "jsmith@example.net", "John", "Smith"),
    ("jsmith@example.net", "John Paul Smith", "jsmith@example.net", "John", "Paul Smith"),
    ("jsmith@example.net", "AVeryLongFirstnameThatExceedsTheMaximumLength Smith", "jsmith@example.net",
     "AVeryLongFirstnameThatExceedsT", "Smith"),
    ("jsmith@example.net", "John AVeryLongLastnameThatExceedsTheMaximumLength", "jsmith@example.net",
     "John", "AVeryLongLastnameThatExceedsTh"),
    ("john.doe@example.net", "", "john.doe@example.net", "john", "doe"),
    ("taro@example.jp", "山田 太郎", "taro@example.jp", "山田", "太郎"),
])
def test_new_account_like_redmine(addr, name, login, first, last):
    new = new_account(Person(addr, name), SETTINGS)
    assert (new.login, new.firstname, new.lastname, new.mail) == (login, first, last, addr)
    assert new.mail_notification == "only_my_events" and new.send_information is True and new.groups == ()


def test_new_account_options():
    settings = Settings(url="http://r", key="k", notification=False, account_notice=False, default_group="a, b")
    new = new_account(Person("foo+bar@example.net"), settings)
    assert new.login.startswith("user") and len(new.login) == 16  # '+' is not allowed in a login
    assert (new.mail_notification, new.send_information, new.groups) == ("none", False, ("a", "b"))


def test_watchers_are_to_and_cc_minus_our_own_addresses():
    settings = Settings(url="http://r", key="k", own_addresses=("helpdesk@example.org", "*@gateway.example"),
                        project_from_subaddress="redmine@example.org",
                        routes=(Route(match={"to": ("ops@example.org",)}, values={}, index=1),))
    mail = parsed(make_mail(sender="jsmith@example.net", to="helpdesk@example.org, Dave <dlopes@example.net>, "
                            "redmine+ops@example.org, ops@example.org, x@gateway.example, jsmith@example.net",
                            headers={"Cc": "boss@example.net, redmine@example.org", "Delivered-To": "me@example.org",
                                     "X-Original-To": "boss@example.net"}))
    assert watcher_addresses(mail, settings) == ("dlopes@example.net",)


def test_form_fields_with_full_width_colons():
    body = "依頼者メール： Taro Yamada <TARO@example.org>\n申請種別: Network\n 対象 ：vpn1.example.org\n備考: \n"
    fields = form.read_fields(body, {"依頼者メール", "申請種別", "対象", "備考"})
    assert fields == {"依頼者メール": "Taro Yamada <TARO@example.org>", "申請種別": "Network", "対象": "vpn1.example.org"}
    assert form.requester_address(fields, ("Requester e-mail", "依頼者メール")) == ("依頼者メール", "taro@example.org")
    assert form.attributes(fields, {"申請種別": "category", "対象": "cf:Target host", "備考": "cf:Note"}) == {
        "category": "Network", "custom_fields": {"Target host": "vpn1.example.org"}}
    assert form.subject("[{申請種別}] {対象} {未定義} ({subject})", fields, "Web form") == \
        "[Network] vpn1.example.org (Web form)"


def test_form_senders_limit_whose_fields_count():
    settings = Settings(url="http://r", key="k", form_senders=("request@example.org", "*@forms.example"))
    assert form.is_form_sender(parsed(make_mail(sender="x@forms.example")), settings)
    assert not form.is_form_sender(parsed(make_mail(sender="taro@example.org")), settings)
    assert not form.applies(parsed(make_mail(sender="taro@example.org")), settings)
    assert form.applies(parsed(make_mail(sender="taro@example.org")), SETTINGS)


def test_what_is_recorded_of_the_requester():
    settings = Settings(url="http://r", key="k", requester_field="Requester e-mail")
    taro = Person("taro@example.org", "Taro Yamada", "form field 依頼者メール")
    fallback = Acting(Account(7, "gateway", "gateway@redmine.test"), "gateway", "fallback")
    as_taro = Acting(Account(20, "taro", "taro@example.org"), "taro", "requester")
    record = record_requester(taro, fallback, None, settings)
    assert (record.set_custom_field, record.header, record.watcher_id) == (True, "Requester: Taro Yamada <taro@example.org>", None)
    record = record_requester(taro, fallback, Account(20, "taro", "taro@example.org"), settings)
    assert (record.header, record.watcher_id) == (None, 20)
    record = record_requester(taro, as_taro, Account(20, "taro", "taro@example.org"), settings)
    assert (record.set_custom_field, record.header, record.watcher_id) == (True, None, None)
    sender = Person("jsmith@example.net", "John Smith", "From")
    record = record_requester(sender, Acting(Account(5, "jsmith", "jsmith@example.net"), "jsmith", "sender"), None, settings)
    assert (record.set_custom_field, record.header, record.watcher_id) == (False, None, None)
    record = record_requester(sender, fallback, Account(5, "jsmith", "jsmith@example.net", active=False), settings)
    assert record.set_custom_field and record.header == "Requester: John Smith <jsmith@example.net>"
