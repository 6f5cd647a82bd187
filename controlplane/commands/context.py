"""The CLI's per-command context: settings and database, loaded only by commands that need them."""

from __future__ import annotations

from typing import Any

import click


class CliContext:
    """Settings and database, loaded once per command and only by commands that need them."""

    def __init__(self) -> None:
        from controlplane.settings import Settings

        self._settings: Settings | None = None

    @property
    def settings(self) -> Any:
        if self._settings is None:
            from controlplane.settings import load_settings

            self._settings = load_settings()
        return self._settings

    def database(self) -> Any:
        from controlplane.storage import Database

        return Database(self.settings.effective_database_url)


pass_ctx = click.make_pass_decorator(CliContext, ensure=True)
