"""Which versions share a server process in `validate`, and how many run at once (no server started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsconvert.validate import plan


def _items(tmp_path: Path, formats: list[str], engines: list[str | None], size: int = 1000) -> list[plan.Item]:
    items = []
    for index, (fmt, engine) in enumerate(zip(formats, engines)):
        directory = tmp_path / f"m{index}" / "1"
        directory.mkdir(parents=True)
        (directory / "model.bin").write_bytes(b"\0" * size)
        items.append(plan.Item(f"m{index}", 1, str(directory), fmt, engine))
    return items


def test_one_process_for_every_runtime_and_one_for_the_second_pmml_engine(tmp_path):
    items = _items(tmp_path, ["savedmodel", "onnx", "pmml", "pmml"], [None, None, "jpmml", "pypmml"])
    groups = plan.groups(items, jobs=4, memory_mb=8192)
    assert [(g.engine, g.items, g.pmml) for g in groups] == [("jpmml", [0, 1, 2], True), ("pypmml", [3], True)]
    assert [g.items for g in plan.groups(items, 4, 8192, per_version=True)] == [[0], [1], [2], [3]]


def test_jobs_cut_a_large_group_into_parts_of_at_least_eight(tmp_path):
    items = _items(tmp_path, ["savedmodel"] * 20, [None] * 20)
    assert [len(g.items) for g in plan.groups(items, jobs=1, memory_mb=8192)] == [20]
    assert [len(g.items) for g in plan.groups(items, jobs=2, memory_mb=8192)] == [10, 10]
    assert [len(g.items) for g in plan.groups(items, jobs=8, memory_mb=8192)] == [10, 10]  # 20 // 8 = 2 parts


def test_models_too_large_for_one_address_space_get_more_processes(tmp_path):
    items = _items(tmp_path, ["savedmodel"] * 3, [None] * 3, size=100 * 2 ** 20)  # 300 MB each once loaded
    groups = plan.groups(items, jobs=1, memory_mb=plan.SERVER_ADDRESS_MB + 700)
    assert [g.items for g in groups] == [[0, 1], [2]]


@pytest.mark.parametrize("available_mb, jobs, why", [
    (100_000, 3, None),
    (2_000, 2, "--jobs 3: 2 server(s) at a time, as 3 would need about 2.2 GB and 2.0 GB is available"),
    (500, 1, "--jobs 3: 1 server(s) at a time"),
])
def test_fewer_jobs_when_memory_is_short_and_it_says_so(tmp_path, available_mb, jobs, why):
    items = _items(tmp_path, ["savedmodel"] * 3, [None] * 3)
    groups = plan.groups(items, 1, 8192, per_version=True)
    found, said = plan.parallel(groups, 3, available_mb)
    assert found == jobs
    assert (said is None) if why is None else said.startswith(why)


def test_jobs_below_one_is_a_bad_option(cli, tmp_path):
    result = cli("validate", tmp_path, "--jobs", "0", "--json")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "bad-option"
    assert error["message"] == "--jobs 0: must be at least 1" and error["hint"] == "e.g. --jobs 2"
    plain = cli("validate", tmp_path, "--jobs", "-1")
    assert plain.exit_code == 2 and plain.stderr.startswith("error [bad-option]: --jobs -1: must be at least 1")
    assert "Traceback" not in plain.stderr


def test_the_api_takes_jobs_too(tmp_path):
    import tfsconvert
    from tfsconvert.errors import InputError

    with pytest.raises(InputError) as refused:
        tfsconvert.validate(tmp_path, jobs=0, server_per_version=True)
    assert refused.value.code == "bad-option" and refused.value.message == "--jobs 0: must be at least 1"
