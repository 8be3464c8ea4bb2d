"""lowres_mt.io helpers that results depend on."""

from lowres_mt.io import portable_path


def test_portable_path_is_relative_inside_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "runs" / "en-is-tell" / "adapter"
    assert portable_path(inside) == "runs/en-is-tell/adapter"  # committed results name no machine path
    assert portable_path("runs/x") == "runs/x"
    outside = tmp_path.parent / "elsewhere"
    assert portable_path(outside) == str(outside)
