"""The suite's own rules: in CI nothing it needs may be missing (a skip there would thin
the run and still pass it); elsewhere a skip says why."""

import pytest

from support import paths


@pytest.mark.parametrize("ci,outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_corpus_fails_in_ci_and_skips_elsewhere_with_the_reason(monkeypatch, tmp_path, ci, outcome):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(paths, "CORPUS", tmp_path)
    # Caught as any exception, then its kind checked: a skip where a failure is due must
    # fail this test, not skip it.
    with pytest.raises(BaseException) as missing_file:
        paths.corpus_file("bounces", "postfix_02.txt")
    assert type(missing_file.value) is outcome and "shared corpus not present" in str(missing_file.value)
    (tmp_path / "bounces").mkdir()
    with pytest.raises(BaseException) as empty_dir:
        paths.corpus_dir("bounces")
    assert type(empty_dir.value) is outcome and "bounces" in str(empty_dir.value)


def test_a_present_corpus_file_is_returned(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(paths, "CORPUS", tmp_path)
    (tmp_path / "bounces").mkdir()
    (tmp_path / "bounces" / "one.txt").write_text("x")
    assert paths.corpus_file("bounces", "one.txt") == tmp_path / "bounces" / "one.txt"
    assert paths.corpus_dir("bounces") == tmp_path / "bounces"
