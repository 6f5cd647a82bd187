"""The witness refuses what a log that lost or rewrote its history sends (C2SP tlog-witness over real
HTTP, its key in its own OpenBao): no valid consistency proof (422), a truncated log (409 with its
size), a fork at the same size (409), a regrown log (422), unknown origins (404) and keys (403);
its memory is a file in its state directory and survives a restart."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from controlplane.tlog.note import (
    Note,
    cosignature_timestamp,
    parse_note,
    parse_signature_lines,
    verified_by,
)
from controlplane.tlog.protocol import SIZE_CONTENT_TYPE, Answer, add_checkpoint, fetch_latest
from tests.fixtures.witness import LocalKeyLog, RunningWitness


@pytest.fixture
def log() -> LocalKeyLog:
    return LocalKeyLog()


@pytest.fixture
def witness(log: LocalKeyLog, make_witness: Callable[..., RunningWitness]) -> RunningWitness:
    return make_witness({log.origin: [log.verifier.vkey()]})


def send(witness: RunningWitness, log: LocalKeyLog, old: int, leaves: list[bytes], *,
         proof: list[bytes] | None = None) -> Answer:
    path = LocalKeyLog.proof(old, leaves) if proof is None and old else (proof or [])
    return add_checkpoint(witness.url, old, path, log.note(leaves))


def test_the_witness_cosigns_a_consistent_extension_with_a_c2sp_cosignature(
    witness: RunningWitness, log: LocalKeyLog
) -> None:
    first, second = LocalKeyLog.leaves("a", 5), LocalKeyLog.leaves("a", 9)
    assert send(witness, log, 0, first).status == 200
    answer = send(witness, log, 5, second)
    assert answer.status == 200, answer.body
    note = parse_note(log.note(second))
    lines = parse_signature_lines(answer.body)
    assert verified_by(Note(note.text, lines), [witness.verifier])  # cosignature/v1 over the checkpoint
    assert cosignature_timestamp(lines[0]) > 1_700_000_000
    latest = fetch_latest(witness.url, log.origin)
    assert latest.status == 200 and latest.body.startswith(note.text)
    record = json.loads((witness.state_dir / "state.json").read_text())["logs"][log.origin]
    assert record["size"] == 9


def test_the_witness_refuses_a_checkpoint_without_a_valid_consistency_proof(
    witness: RunningWitness, log: LocalKeyLog
) -> None:
    first, second = LocalKeyLog.leaves("a", 5), LocalKeyLog.leaves("a", 9)
    assert send(witness, log, 0, first).status == 200
    missing = send(witness, log, 5, second, proof=[])
    assert missing.status == 422 and "consistency proof" in missing.body
    wrong = send(witness, log, 5, second, proof=[bytes(32)] * len(LocalKeyLog.proof(5, second)))
    assert wrong.status == 422
    assert send(witness, log, 5, second).status == 200  # the right proof is accepted


def test_the_witness_refuses_a_truncated_log_and_names_its_size(
    witness: RunningWitness, log: LocalKeyLog
) -> None:
    assert send(witness, log, 0, LocalKeyLog.leaves("a", 8)).status == 200
    # the log lost its history: it starts over from nothing, or claims an old size it never had
    for old, leaves in ((0, LocalKeyLog.leaves("a", 3)), (3, LocalKeyLog.leaves("a", 5))):
        answer = send(witness, log, old, leaves)
        assert answer.status == 409
        assert answer.content_type.startswith(SIZE_CONTENT_TYPE) and answer.body == "8\n"
        assert answer.conflict_size == 8
    # nor can it prove a smaller tree from the witness's size
    assert send(witness, log, 8, LocalKeyLog.leaves("a", 5), proof=[]).status == 400


def test_the_witness_refuses_a_fork_at_the_same_size(witness: RunningWitness, log: LocalKeyLog) -> None:
    assert send(witness, log, 0, LocalKeyLog.leaves("a", 6)).status == 200
    fork = send(witness, log, 6, LocalKeyLog.leaves("b", 6))
    assert fork.status == 409 and "fork" in fork.body
    # the log's signed fork is kept as evidence of its misbehaviour
    kept = [p.read_text() for p in (witness.state_dir / "evidence").iterdir()]
    forked = log.note(LocalKeyLog.leaves("b", 6))
    assert any(text.startswith("# refused: fork") and forked in text for text in kept)
    assert send(witness, log, 6, LocalKeyLog.leaves("a", 6)).status == 200  # the same checkpoint again


def test_the_witness_refuses_a_regrown_log(witness: RunningWitness, log: LocalKeyLog) -> None:
    assert send(witness, log, 0, LocalKeyLog.leaves("a", 6)).status == 200
    # cut to 4 leaves, then grown to 10 with other events: the right length, another history
    regrown = LocalKeyLog.leaves("a", 4) + LocalKeyLog.leaves("b", 6)
    answer = send(witness, log, 6, regrown)
    assert answer.status == 422 and "history differs" in answer.body
    assert fetch_latest(witness.url, log.origin).body.startswith(f"{log.origin}\n6\n")


def test_the_witness_refuses_unknown_origins_and_keys(witness: RunningWitness, log: LocalKeyLog) -> None:
    stranger = LocalKeyLog("log.test/unknown")
    assert send(witness, stranger, 0, LocalKeyLog.leaves("a", 2)).status == 404
    impostor = LocalKeyLog(log.origin)  # right origin, a key the witness does not trust
    answer = send(witness, impostor, 0, LocalKeyLog.leaves("a", 2))
    assert answer.status == 403 and "no signature by a key trusted" in answer.body
    tampered = log.note(LocalKeyLog.leaves("a", 2)).replace("\n2\n", "\n3\n", 1)
    assert add_checkpoint(witness.url, 0, [], tampered).status == 403
    assert add_checkpoint(witness.url, 0, [], "not a checkpoint").status == 400


def test_the_witness_remembers_across_a_restart(
    witness: RunningWitness, log: LocalKeyLog, make_witness: Callable[..., RunningWitness]
) -> None:
    assert send(witness, log, 0, LocalKeyLog.leaves("a", 7)).status == 200
    witness.server.shutdown()
    again = make_witness({log.origin: [log.verifier.vkey()]}, state_dir=witness.state_dir)
    answer = send(again, log, 0, LocalKeyLog.leaves("b", 2))
    assert answer.status == 409 and answer.conflict_size == 7
