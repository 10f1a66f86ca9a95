import os

import pytest

from m2r_deliver.errors import StateError
from m2r_deliver.maildir import deliver_to_maildir


def test_message_lands_in_new_byte_for_byte(tmp_path):
    data = b"From x\r\nSubject: \xff\r\n\r\nbody\r\n"
    path = deliver_to_maildir(tmp_path / "box", data)
    assert path.parent == tmp_path / "box" / "new"
    assert path.read_bytes() == data
    assert os.listdir(tmp_path / "box" / "tmp") == []
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_file_in_the_way_is_a_state_error(tmp_path):
    (tmp_path / "box").write_text("not a directory")
    with pytest.raises(StateError):
        deliver_to_maildir(tmp_path / "box", b"x")
