"""Quote and signature stripping for notes, on the shapes real mail clients write."""

import pytest

from m2r_deliver.quotes import strip_reply
from support.paths import ROOT

FIXTURES = ROOT / "tests" / "fixtures"

NOTIFICATION = ("> Issue #5 has been reported by Redmine Admin.\n"
                "> ----------------------------------------\n"
                "> Support #5: VPN broken\n"
                "> * Author: Redmine Admin")


@pytest.mark.parametrize("client,text", [
    ("gmail", f"Thanks, fixed.\n\nOn Fri, Nov 27, 2026 at 9:15 PM Redmine <redmine@redmine.test> wrote:\n\n{NOTIFICATION}"),
    ("gmail wrapped", "Thanks, fixed.\n\nOn Fri, Nov 27, 2026 at 9:15 PM Redmine Admin <\nredmine@redmine.test> wrote:\n"
                      f"{NOTIFICATION}"),
    ("thunderbird", f"Thanks, fixed.\n\nOn 2026/11/27 21:15, Redmine wrote:\n{NOTIFICATION}"),
    ("outlook", "Thanks, fixed.\n\n________________________________\nFrom: Redmine <redmine@redmine.test>\n"
                "Sent: Friday, November 27, 2026 9:15 PM\nTo: John Smith\nSubject: [Helpdesk - Support #5] VPN broken\n\n"
                "Issue #5 has been reported by Redmine Admin."),
    ("outlook bold", "Thanks, fixed.\n\n*From:* Redmine <redmine@redmine.test>\n*Sent:* Friday 9:15 PM\n"
                     "*Subject:* [Helpdesk - Support #5]\n\nIssue #5 has been reported"),
    ("original message", "Thanks, fixed.\n\n-----Original Message-----\nFrom: Redmine\nIssue #5 has been reported"),
])
def test_english_clients(client, text):
    assert strip_reply(text) == "Thanks, fixed."


@pytest.mark.parametrize("client,text", [
    ("gmail ja", f"対応しました。\n\n2026年11月27日(金) 21:15 Redmine <redmine@redmine.test>:\n\n{NOTIFICATION}"),
    ("thunderbird ja", f"対応しました。\n\nRedmine さんは書きました:\n{NOTIFICATION}"),
    ("thunderbird ja dated", f"対応しました。\n\n2026/11/27 21:15 に Redmine さんは書きました:\n{NOTIFICATION}"),
    ("outlook ja", "対応しました。\n\n差出人: Redmine <redmine@redmine.test>\n送信日時: 2026年11月27日 21:15\n"
                   "宛先: 山田 太郎\n件名: [Helpdesk - Support #5] VPN\n\nチケット #5 が報告されました"),
    ("outlook ja original", "対応しました。\n\n-----元のメッセージ-----\n差出人: Redmine"),
])
def test_japanese_clients(client, text):
    assert strip_reply(text) == "対応しました。"


def test_bottom_posting_keeps_the_answer_below_the_quote():
    text = f"On Fri, Nov 27, 2026 at 9:15 PM Redmine <redmine@redmine.test> wrote:\n{NOTIFICATION}\n\nRebooted the VPN box."
    assert strip_reply(text) == "Rebooted the VPN box."


def test_interleaved_answers_keep_their_questions():
    text = ("On Fri, Nov 27, 2026, Redmine wrote:\n> Which host?\nvpn1\n\n> Since when?\nThis morning.\n\n"
            "> Regards,\n> Helpdesk")
    assert strip_reply(text) == "> Which host?\nvpn1\n\n> Since when?\nThis morning."


def test_signature_and_phone_trailers_go():
    assert strip_reply("Fixed.\n\n--\nTaro Yamada\nExample Corp\ntel 03-0000-0000") == "Fixed."
    assert strip_reply("Fixed.\n\nSent from my iPhone") == "Fixed."
    assert strip_reply("直しました。\n\niPhoneから送信") == "直しました。"


def test_ordinary_text_is_left_alone():
    text = ("On Monday we will deploy the fix.\nFrom: the ops team, with love.\n\n"
            "-- this dash line is part of the text, followed by a long explanation --\n" + "line\n" * 3)
    assert strip_reply(text) == text.strip()


def test_a_long_tail_after_dashes_is_not_a_signature():
    text = "Report:\n--\n" + "\n".join(f"row {n}" for n in range(30))
    assert strip_reply(text) == text


def test_nothing_but_a_quote_keeps_the_text():
    assert strip_reply(NOTIFICATION) == NOTIFICATION


#: The text of a new-issue notification as the test-bed Redmine 5.0 writes it (its
#: mail_dir), down to the footer below "-- ".
REDMINE_NOTIFICATION = (FIXTURES / "replies" / "redmine-notification.txt").read_text(encoding="utf-8")
QUOTED = "\n".join(f"> {line}" if line else ">" for line in REDMINE_NOTIFICATION.splitlines())


@pytest.mark.parametrize("attribution", [
    "On 12/1/26 17:53, Redmine wrote:",  # Thunderbird
    "On Tue, Dec 1, 2026 at 5:53 PM Redmine <redmine@redmine.test> wrote:",  # Gmail
    "2026/12/01 17:53, Redmine さんは書きました:",  # Thunderbird, Japanese
    "2026年12月1日(火) 17:53 Redmine <redmine@redmine.test>:",  # Gmail, Japanese
])
@pytest.mark.parametrize("gap", ["\n", "\n\n"])
def test_a_signature_below_the_quoted_notification_leaves_only_the_reply(attribution, gap):
    """Thunderbird's and Gmail's default with a signature set: the reply on top, the quoted
    notification (with Redmine's own footer), then the signature."""
    text = f"Toner replaced, it prints again.\n\n{attribution}\n{QUOTED}{gap}-- \nTaro Yamada\nExample Corp, IT\n"
    assert strip_reply(text) == "Toner replaced, it prints again."


def test_a_signature_below_a_bottom_posted_reply_goes_too():
    text = f"On 12/1/26 17:53, Redmine wrote:\n{QUOTED}\n\nToner replaced.\n\n-- \nTaro Yamada\n"
    assert strip_reply(text) == "Toner replaced."


def test_a_signature_below_interleaved_answers_leaves_them_as_without_one():
    interleaved = "On 12/1/26 17:53, Redmine wrote:\n> Which host?\nvpn1\n\n> Since when?\nThis morning."
    assert strip_reply(f"{interleaved}\n\n-- \nTaro\n") == strip_reply(interleaved) == (
        "> Which host?\nvpn1\n\n> Since when?\nThis morning.")
    unanswered_rest = "On 12/1/26 17:53, Redmine wrote:\n> Which host?\nvpn1\n\n> Regards,\n> Helpdesk"
    assert strip_reply(f"{unanswered_rest}\n\n-- \nTaro\n") == strip_reply(unanswered_rest) == "vpn1"
