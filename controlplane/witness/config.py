"""The witness's configuration: `witness.json` in its state directory (name, its OpenBao, trusted logs)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.tlog.note import NoteError, Verifier, parse_vkey

CONFIG_FILE = "witness.json"
STATE_FILE = "state.json"
VKEY_FILE = "witness.vkey"
TOKEN_ENV = "WITNESS_VAULT_TOKEN"  # noqa: S105 - the variable's name, not a token


class WitnessConfigError(Exception):
    pass


@dataclass(frozen=True)
class WitnessConfig:
    state_dir: Path
    name: str
    vault_addr: str
    vault_token_file: str = ""
    transit_mount: str = "transit"
    key: str = "witness"
    # origin -> the log's verifier keys (several while a log key rotates)
    logs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.state_dir / CONFIG_FILE

    def log_verifiers(self, origin: str) -> list[Verifier] | None:
        """The keys trusted for `origin`, or None for an origin this witness does not serve."""
        vkeys = self.logs.get(origin)
        return None if vkeys is None else [parse_vkey(v) for v in vkeys]

    def vault_token(self) -> str:
        token = os.environ.get(TOKEN_ENV, "")
        if not token and self.vault_token_file:
            token = Path(self.vault_token_file).read_text(encoding="ascii").strip()
        if not token:
            raise WitnessConfigError(f"no OpenBao token: set {TOKEN_ENV} or vault_token_file in {self.path}")
        return token

    def save(self) -> None:
        data = {
            "name": self.name,
            "vault_addr": self.vault_addr,
            "vault_token_file": self.vault_token_file,
            "transit_mount": self.transit_mount,
            "key": self.key,
            "logs": self.logs,
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def load_config(state_dir: Path) -> WitnessConfig:
    path = state_dir / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        config = WitnessConfig(
            state_dir=state_dir,
            name=str(data["name"]),
            vault_addr=str(data["vault_addr"]),
            vault_token_file=str(data.get("vault_token_file", "")),
            transit_mount=str(data.get("transit_mount", "transit")),
            key=str(data.get("key", "witness")),
            logs={str(o): [str(v) for v in vs] for o, vs in dict(data.get("logs", {})).items()},
        )
        for origin in config.logs:
            config.log_verifiers(origin)  # every key parses, or the witness does not start
    except FileNotFoundError:
        raise WitnessConfigError(f"{path} is missing: run `controlplane witness init`") from None
    except (OSError, ValueError, KeyError, TypeError, NoteError) as exc:
        raise WitnessConfigError(f"{path}: {exc}") from None
    return config
