"""Version directory names, exactly as TF Serving parses them (docs/tf-serving.md §1.3)."""

import pytest

from tfsconvert.layout import is_canonical_version, parse_version, scan_children, versions_by_number


@pytest.mark.parametrize("name, expected", [
    ("1", 1), ("42", 42), ("20170111173521", 20170111173521),
    ("00000123", 123), ("007", 7),
    ("-5", -5), ("+7", 7), (" 12 ", 12),
    ("1.0", None), ("1e3", None), ("0x10", None), ("v1", None), ("1a", None), ("1.denied", None),
    ("+", None), ("-", None), ("latest", None), ("", None), ("١٢", None),
    (str(2**63 - 1), 2**63 - 1), (str(2**63), None),
])
def test_spec_1_3_version_names(name, expected):
    assert parse_version(name) == expected


@pytest.mark.parametrize("name, canonical", [("1", True), ("3", True), ("0", False), ("007", False),
                                             ("-5", False), ("+7", False), ("v3", False), ("3.0", False)])
def test_canonical_versions_are_positive_plain_decimal(name, canonical):
    assert is_canonical_version(name) is canonical


def test_duplicates_keep_the_last_in_byte_order(tmp_path):
    # docs/tf-serving.md §1.3: "Version 1 will be loaded from 1, 01 will be ignored."
    for name in ("1", "01", "001", "v2"):
        (tmp_path / name).mkdir()
    grouped = versions_by_number(scan_children(tmp_path))
    assert list(grouped) == [1]
    assert [c.name for c in grouped[1]] == ["001", "01", "1"]
