"""The ``course`` command's pieces: the learner's workspace, JupyterLab's command line, bench."""

from __future__ import annotations

import pytest

from course_lib import bench, cli


def test_workspace_is_filled_once_and_never_overwritten(tmp_path):
    release = tmp_path / "notebooks"
    (release / "01_clip").mkdir(parents=True)
    (release / "01_clip" / "01_clip.ipynb").write_text("released v1")
    workspace = tmp_path / "workspace"

    copied = cli.fill_workspace(release, workspace)
    assert [p.name for p in copied] == ["01_clip.ipynb"]

    (workspace / "01_clip" / "01_clip.ipynb").write_text("my answers")
    (release / "01_clip" / "01_clip.ipynb").write_text("released v2")
    (release / "02_ddpm").mkdir()
    (release / "02_ddpm" / "02_ddpm.ipynb").write_text("new notebook")

    copied = cli.fill_workspace(release, workspace)
    assert [p.name for p in copied] == ["02_ddpm.ipynb"]
    assert (workspace / "01_clip" / "01_clip.ipynb").read_text() == "my answers"


def test_lab_command_is_headless_and_root_safe(monkeypatch, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(cli.sys, "platform", "linux")
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    cmd = cli.lab_command(tmp_path, ["--port", "9999"])
    assert f"--ServerApp.root_dir={tmp_path}" in cmd
    assert "--no-browser" in cmd and "--allow-root" in cmd
    assert cmd[-2:] == ["--port", "9999"]


def test_lab_command_as_a_user_with_a_screen_opens_the_browser(monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    cmd = cli.lab_command(tmp_path, [])
    assert "--no-browser" not in cmd and "--allow-root" not in cmd


def test_unknown_subcommand_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_release_of_an_unknown_assignment_is_a_clear_error(capsys):
    assert cli.main(["release", "99_nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown assignment(s) 99_nope: expected one of" in err and "00_setup" in err


def test_bench_table_rejects_a_row_of_the_wrong_width():
    table = bench.Table("t", ["a", "b"])
    table.add(1, 2.0)
    with pytest.raises(ValueError, match="has 2 columns"):
        table.add(1)
    assert "| 1 | 2 |" in table.to_markdown()


def test_bench_merge_replaces_only_its_own_group():
    text = bench.HEADER
    text = bench.merge(text, "core", bench.render_section("core", [], 1.0, "m1"))
    text = bench.merge(text, "data", bench.render_section("data", [], 1.0, "m1"))
    text = bench.merge(text, "core", bench.render_section("core", [], 2.0, "m2"))
    assert text.count("## core") == 1 and text.count("## data") == 1
    assert "in 2 s. m2" in text and "in 1 s. m1" in text


def test_bench_runs_one_group_and_keeps_the_others(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "alpha.py").write_text(
        "from course_lib.bench import Table\n"
        "def run(ctx):\n"
        "    t = Table('speed', ['what', 'value'])\n"
        "    t.add('threads', ctx.threads)\n"
        "    return [t]\n"
    )
    out = tmp_path / "B.md"
    out.write_text(
        bench.merge(bench.HEADER, "beta", "<!-- bench:beta:begin -->kept<!-- bench:beta:end -->")
    )
    bench.run(tmp_path, only=["alpha"], output=out, threads=1)
    text = out.read_text()
    assert "| threads | 1 |" in text and "kept" in text
    with pytest.raises(ValueError, match="unknown benchmark group"):
        bench.run(tmp_path, only=["gamma"], output=out)


def test_grade_help_reaches_the_graders_own_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["grade", "--help"])
    assert exit_info.value.code == 0
    assert "usage: course grade" in capsys.readouterr().out
