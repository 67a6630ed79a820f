"""The help overlay shows its text as written (``[keymap]``, ``[ ]`` are not markup); ``s`` saves the screenshot
beside the recordings in the user data directory (made 0700) unless told a directory, and says where in full."""

from __future__ import annotations

import stat

from anycast_tui.lab.demo import SimControls
from anycast_tui.lab.sim import SimFabric
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.help import HelpScreen

T0 = 1_764_000_000.0


def _app(**kw) -> AnycastApp:
    clock = lambda: T0  # noqa: E731
    sim = SimFabric(clock=clock)
    session = SimSession(sim, clock=clock)
    session.poll()
    return AnycastApp(session, controls=SimControls(sim), clock=clock, **kw)


def _notes(app: AnycastApp, monkeypatch) -> list[str]:  # noqa: ANN001
    """The messages ``app`` notifies from now on (its public ``notify``, spied on and still run)."""
    notes: list[str] = []
    notify = app.notify

    def spy(message, *args, **kw):  # noqa: ANN001, ANN202
        notes.append(str(message))
        return notify(message, *args, **kw)

    monkeypatch.setattr(app, "notify", spy)
    return notes


def _text(widget) -> str:  # noqa: ANN001
    return "\n".join(strip.text for strip in widget.render_lines(widget.region.reset_offset))


async def test_help_shows_keymap_and_brackets_literally():
    app = _app()
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = " ".join(_text(app.screen.query_one("#help-about")).split())
        assert "in the [keymap] table of a TOML config" in shown
        assert "[ ] select an event" in shown


async def test_screenshot_goes_to_the_user_data_directory_and_says_where(tmp_path, monkeypatch):
    data, cwd = tmp_path / "data", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("ANYCAST_TUI_RECORDINGS", raising=False)
    monkeypatch.chdir(cwd)
    app = _app()
    notes = _notes(app, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        shots = data / "anycast-tui" / "screenshots"
        (svg,) = shots.iterdir()
        assert svg.suffix == ".svg" and "<svg" in svg.read_text()
        assert stat.S_IMODE(shots.stat().st_mode) == 0o700
        assert list(cwd.iterdir()) == []  # not ./screenshots
        assert notes == [str(svg)] and svg.is_absolute()


async def test_screenshot_into_the_directory_given(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    app = _app(screenshot_dir=tmp_path / "mine")
    notes = _notes(app, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        (svg,) = (tmp_path / "mine").iterdir()
        assert notes == [str(svg.resolve())]
        assert not (tmp_path / "data").exists()
