"""``basis_ode.data.read_tagged_text``: word/TAG passages, checked against hand-written files."""

import pytest

from basis_ode.data import read_tagged_text
from trainkit import FileFormatError

# Each line is one passage; the expected words and tags are written out by hand below. The
# second line has a tab and two spaces between tokens and ends in CRLF.
TEXT = (
    "Pierre/NNP Vinken/NNP ,/, 61/CD years/NNS old/JJ ./.\n"
    "\n"
    "   \n"
    "He/PRP bought/VBD\t1\\/2/CD of/IN it/PRP and/or/CC sold/VBD  it/PRP ./.\r\n"
    "$/$ 3\\/4\\/5/CD ''/'' PRP$/PRP$\n"
)
EXPECTED = [
    (["Pierre", "Vinken", ",", "61", "years", "old", "."],
     ["NNP", "NNP", ",", "CD", "NNS", "JJ", "."]),
    (["He", "bought", "1/2", "of", "it", "and/or", "sold", "it", "."],
     ["PRP", "VBD", "CD", "IN", "PRP", "CC", "VBD", "PRP", "."]),
    (["$", "3/4/5", "''", "PRP$"], ["$", "CD", "''", "PRP$"]),
]  # fmt: skip


def test_reads_a_hand_written_file(tmp_path):
    path = tmp_path / "sample.txt"
    path.write_bytes(TEXT.encode("utf-8"))
    assert read_tagged_text(path) == EXPECTED
    # the same text given as a string, and the path given as a string, read the same
    assert read_tagged_text(TEXT) == EXPECTED
    assert read_tagged_text(str(path)) == EXPECTED


@pytest.mark.parametrize(
    ("line", "token"),
    [
        ("a/DT bought ./.", "bought"),  # no slash at all
        ("a/DT bought\t1\\/2/CD ./.", "bought"),  # a tab separates tokens
        ("a/DT 1\\/2 ./.", "1\\/2"),  # only an escaped slash
        ("a/DT dog/ ./.", "dog/"),  # empty tag
        ("a/DT /NN ./.", "/NN"),  # empty word
    ],
)
def test_malformed_token_is_refused_naming_file_and_line(tmp_path, line, token):
    path = tmp_path / "bad.txt"
    path.write_text("The/DT dog/NN ./.\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(FileFormatError) as err:
        read_tagged_text(path)
    message = str(err.value)
    assert str(path) in message and "line 3" in message and repr(token) in message


def test_text_errors_use_the_given_name():
    with pytest.raises(FileFormatError, match=r"^archive!member, line 2: malformed token 'x'"):
        read_tagged_text("a/DT\nx y/NN\n", name="archive!member")


def test_empty_text_has_no_passages(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n \n\t\n", encoding="utf-8")
    assert read_tagged_text(path) == []
