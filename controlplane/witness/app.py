"""The witness's HTTP face (a WSGI app, werkzeug): POST /add-checkpoint, GET /latest, /vkey, /readyz."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from controlplane.tlog.protocol import MAX_BODY_BYTES
from controlplane.witness.config import STATE_FILE, VKEY_FILE, load_config
from controlplane.witness.service import TEXT, Reply, Witness
from controlplane.witness.signer import SignerError, TransitSigner
from controlplane.witness.state import WitnessState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)


class WitnessApp:
    def __init__(self, witness: Witness) -> None:
        self.witness = witness

    def route(self, request: Request) -> Reply:
        if request.path == "/add-checkpoint":
            if request.method != "POST":
                return Reply(405, "POST only\n")
            request.max_content_length = MAX_BODY_BYTES  # chunked bodies too: werkzeug stops reading
            try:
                body = request.get_data(cache=False)
            except RequestEntityTooLarge:
                return Reply(413, "request body too large\n")
            return self.witness.add_checkpoint(body)
        if request.method != "GET":
            return Reply(405, "GET only\n")
        if request.path == "/latest":
            return self.witness.latest(request.args.get("origin", ""))
        if request.path == "/vkey":
            return Reply(200, self.witness.verifier().vkey() + "\n")
        if request.path == "/readyz":
            self.witness.verifier()  # its OpenBao answers and holds the key
            return Reply(200, "ready\n")
        return Reply(404, "not found\n")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            reply = self.route(request)
        except SignerError as exc:
            log.error("witness key unavailable: %s", exc)
            reply = Reply(503, "the witness's key is unavailable\n")
        response = Response(reply.body, status=reply.status, content_type=reply.content_type or TEXT)
        return response(environ, start_response)


def create_app(state_dir: str | Path) -> WitnessApp:
    """The app for a state directory (`gunicorn 'controlplane.witness.app:create_app("DIR")'`)."""
    config = load_config(Path(state_dir))
    signer = TransitSigner(
        addr=config.vault_addr, token=config.vault_token(), mount=config.transit_mount, key=config.key
    )
    witness = Witness(config, signer, WitnessState(config.state_dir / STATE_FILE))
    return WitnessApp(witness)


def publish_vkey(app: WitnessApp) -> str:
    """Write the witness's verifier key to its state dir (what logs and auditors pin); return it."""
    vkey = app.witness.verifier().vkey()
    (app.witness.config.state_dir / VKEY_FILE).write_text(vkey + "\n", encoding="ascii")
    return vkey
