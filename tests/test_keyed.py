"""The keyword rules on their own: which keywords apply, over which defaults, and why the
others do not — with the names Redmine knows given as a dict, no HTTP."""

from __future__ import annotations

from m2r_deliver.keyed import merged, resolve_keywords
from m2r_deliver.plan import Keyword
from support.names import NAMES


def test_known_values_apply_over_the_defaults_and_unknown_ones_say_why():
    keywords = (Keyword("priority", "High", 2), Keyword("tracker", "Feature", 3), Keyword("due_date", "2026-01-01", 4))
    keyed = resolve_keywords(NAMES, "helpdesk", keywords)
    assert keyed.project == "helpdesk"
    assert keyed.over({"priority_id": 1, "tracker_id": 1}) == {"priority_id": 3, "tracker_id": 1,
                                                              "due_date": "2026-01-01"}
    assert keyed.lines == {2, 4}
    assert keyed.warnings == ("tracker 'Feature' unknown: ignored",)


def test_a_project_keyword_moves_the_mail_only_to_a_project_that_exists():
    moved = resolve_keywords(NAMES, "helpdesk", (Keyword("project", "ops", 0),))
    assert moved.project == "ops" and moved.lines == {0} and not moved.warnings
    kept = resolve_keywords(NAMES, "helpdesk", (Keyword("project", "nowhere", 0),))
    assert kept.project == "helpdesk" and kept.lines == set()
    assert kept.warnings == ("project 'nowhere' unknown: filed in helpdesk",)


def test_without_a_project_no_keyword_applies():
    keyed = resolve_keywords(NAMES, None, (Keyword("priority", "High", 1),))
    assert keyed.project is None and keyed.applied == ()


def test_custom_field_values_are_matched_to_the_fields_choices():
    keywords = (Keyword("custom_field", "high", 1, name="Severity"), Keyword("custom_field", "Blue, RED", 2, name="Tags"),
                Keyword("custom_field", "urgent", 3, name="Severity"),
                Keyword("custom_field", "x", 4, name="Colour", speculative=True),
                Keyword("custom_field", "y", 5, name="Mood"))
    keyed = resolve_keywords(NAMES, "helpdesk", keywords)
    assert keyed.over({})["custom_fields"] == [{"id": 7, "value": "High"}, {"id": 8, "value": ["blue", "red"]}]
    assert keyed.lines == {1, 2}
    assert keyed.warnings == ("custom field 'Severity': 'urgent' is not one of its values: ignored",
                              "custom field 'Mood' unknown: ignored")  # the speculative line is ordinary text


def test_without_takes_keywords_back_with_the_reason():
    high = Keyword("priority", "High", 2)
    keyed = resolve_keywords(NAMES, "helpdesk", (high, Keyword("tracker", "Bug", 3))).without([high], "refused")
    assert keyed.lines == {3} and keyed.warnings == ("priority 'High' refused",)


def test_merged_lays_custom_fields_over_by_id():
    defaults = {"tracker_id": 1, "custom_fields": [{"id": 7, "value": "Low"}, {"id": 9, "value": "a"}]}
    assert merged(defaults, {"tracker_id": 2, "custom_fields": [{"id": 7, "value": "High"}]}) == {
        "tracker_id": 2, "custom_fields": [{"id": 7, "value": "High"}, {"id": 9, "value": "a"}]}
