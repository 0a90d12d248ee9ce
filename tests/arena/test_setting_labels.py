"""Setting labels of user data files: a file is shown by its name, and files of the same name
in different folders by the fewest trailing folders that tell them apart."""

import pytest

from losslab.arena.config import LossSpec, RunConfig
from losslab.arena.store import StoredRun
from losslab.arena.summary import config_settings, settings_of_runs
from losslab.arena.user_sources import display_names


def test_names_that_do_not_clash_are_shown_as_before():
    values = ["mnist1d", "/x/a/pets.csv#species", "/x/b/iris.csv", "/y/t.npz", "pkg.data:load"]
    assert display_names(values) == {
        "mnist1d": "mnist1d", "/x/a/pets.csv#species": "pets.csv[species]",
        "/x/b/iris.csv": "iris.csv", "/y/t.npz": "t.npz", "pkg.data:load": "pkg.data:load"}


def test_clashing_names_get_the_shortest_distinguishing_folders():
    names = display_names(["/d/a/data.csv", "/d/b/data.csv", "/e/b/data.csv", "/d/c/data.npz"])
    assert names == {"/d/a/data.csv": "a/data.csv", "/d/b/data.csv": "d/b/data.csv",
                     "/e/b/data.csv": "e/b/data.csv", "/d/c/data.npz": "data.npz"}


@pytest.mark.parametrize(("values", "expected"), [
    # The label column is part of the name: only equal columns clash.
    (["/a/data.csv#y", "/b/data.csv#y", "/b/data.csv#z"],
     ["a/data.csv[y]", "b/data.csv[y]", "data.csv[z]"]),
    # A path that ends another one whole is shown whole.
    (["a/data.csv", "/q/a/data.csv"], ["a/data.csv", "q/a/data.csv"]),
    # Repeats name one dataset.
    (["/a/data.csv", "/a/data.csv"], ["data.csv"]),
])
def test_label_columns_whole_paths_and_repeats(values, expected):
    assert list(display_names(values).values()) == expected


def _run(dataset, noise="symmetric", rate=0.2, loss="ce"):
    config = RunConfig(loss=LossSpec(loss), dataset=dataset, model="mlp", noise=noise,
                       noise_rate=rate)
    return StoredRun("", config, {})


def test_one_store_with_two_files_of_one_name_has_two_settings():
    runs = [_run(f"/data/{folder}/pets.csv#species", rate=rate)
            for folder in ("a", "b") for rate in (0.0, 0.2)]
    settings = list(dict.fromkeys(s for s, _ in settings_of_runs(runs)))
    assert [s.split(",")[0] for s in settings] == ["a/pets.csv[species]", "b/pets.csv[species]"]
    # Alone, a file keeps its plain name.
    assert config_settings([runs[1].config]) == {settings[0].replace("a/pets", "pets")}


def test_a_clean_run_joins_the_noisy_setting_of_its_own_file():
    runs = [_run("/a/pets.csv", noise="none", rate=0.0), _run("/b/pets.csv", noise="none", rate=0.0),
            _run("/a/pets.csv"), _run("/b/pets.csv", noise="asymmetric")]
    by_folder = {r.config.dataset: s for s, r in settings_of_runs(runs) if r.config.noise == "none"}
    assert by_folder["/a/pets.csv"].startswith("a/pets.csv, mlp, symmetric noise")
    assert by_folder["/b/pets.csv"].startswith("b/pets.csv, mlp, asymmetric noise")
