from __future__ import annotations

import json
from pathlib import Path

import pytest

from condorcof.errors import FilesetError
from condorcof.fileset import load_fileset


def write(tmp_path: Path, name: str, obj: object) -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_coffea_form_resolves_relative_paths_and_keeps_metadata(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write(
        tmp_path, "fs.json", {"DY": {"files": {"sub/a.root": "Events"}, "metadata": {"isMC": True}}}
    )
    (ds,) = load_fileset(path)
    assert ds.name == "DY"
    assert ds.metadata == {"isMC": True}
    assert ds.files[0].path == str(tmp_path / "sub" / "a.root")
    assert ds.files[0].treename == "Events"


def test_preprocessed_coffea_form(tmp_path: Path) -> None:
    files = {
        "a.root": {
            "object_path": "Events",
            "num_entries": 40,
            "uuid": "u1",
            "steps": [[0, 20], [20, 40]],
        }
    }
    (ds,) = load_fileset(write(tmp_path, "fs.json", {"DY": {"files": files}}))
    spec = ds.files[0]
    assert (spec.num_entries, spec.uuid, spec.steps) == (40, "u1", ((0, 20), (20, 40)))


def test_short_form_uses_treename_and_urls_pass_through(tmp_path: Path) -> None:
    url = "root://eosuser.cern.ch//eos/x.root"
    (ds,) = load_fileset(write(tmp_path, "fs.json", {"A": ["x.root", url]}), treename="Tree")
    assert [f.path for f in ds.files] == [str(tmp_path / "x.root"), url]
    assert {f.treename for f in ds.files} == {"Tree"}


def test_globs_expand_sorted_and_empty_glob_names_dataset(tmp_path: Path) -> None:
    for name in ("b.root", "a.root", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    (ds,) = load_fileset(write(tmp_path, "fs.json", {"A": ["*.root"]}))
    assert [Path(f.path).name for f in ds.files] == ["a.root", "b.root"]
    with pytest.raises(FilesetError, match=r"dataset 'B'.*\*\.nothing"):
        load_fileset(write(tmp_path, "fs2.json", {"B": ["*.nothing"]}))


def test_text_file_of_paths_is_one_dataset(tmp_path: Path) -> None:
    path = write(tmp_path, "ttbar.txt", "# comment\na.root\n\n/abs/b.root  # trailing\n")
    (ds,) = load_fileset(path)
    assert ds.name == "ttbar"
    assert [f.path for f in ds.files] == [str(tmp_path / "a.root"), "/abs/b.root"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object of datasets"),
        ('{"DY": {"filez": []}}', "dataset 'DY' has no 'files' key"),
        ('{"DY": {"files": []}}', "dataset 'DY' has no files"),
        ('{"DY": {"files": {"a.root": 3}}}', "file .*a.root: expected a tree name"),
        ('{"DY": {"files": {"a.root": {"steps": [[0, 1]]}}}}', "no 'object_path'"),
        ('{"DY": 5}', "dataset 'DY' must be a list"),
    ],
)
def test_malformed_filesets_name_the_culprit(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(FilesetError, match=message):
        load_fileset(path)


def test_missing_fileset_file(tmp_path: Path) -> None:
    with pytest.raises(FilesetError, match="cannot read fileset .*nope.json"):
        load_fileset(tmp_path / "nope.json")


def test_shared_example_fileset(data: Path) -> None:
    datasets = load_fileset(data / "fileset.json")
    assert [d.name for d in datasets][:2] == ["DYJetsToLL_2018_MC", "DoubleMuon_2018A_Data"]
    assert all(Path(f.path).exists() for d in datasets for f in d.files)
