"""C2SP signed-note, tlog-checkpoint, tlog-cosignature and tlog-witness encodings against the
specifications' examples and the Go reference implementation's (golang.org/x/mod/sumdb/note) vector."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.audit.pinning import Pinned, parse_since, pinned_fault
from controlplane.errors import InvalidInput
from controlplane.tlog import merkle
from controlplane.tlog.note import (
    SIG_COSIGNATURE_V1,
    Checkpoint,
    Note,
    NoteError,
    cosign_line,
    cosignature_message,
    cosignature_timestamp,
    cosigner_verifier,
    key_id,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    sign_note_line,
    verified_by,
)
from controlplane.tlog.protocol import parse_request, request_body

# golang.org/x/mod/sumdb/note note_test.go
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

# c2sp.org/tlog-cosignature: a checkpoint with the log's signature and a witness cosignature
SPEC_CHECKPOINT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_NOTE = (
    SPEC_CHECKPOINT
    + "\n\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q"
    "1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1"
    "nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def go_private_key() -> Ed25519PrivateKey:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])  # PRIVATE+KEY+name+id+key; the key may hold "+"
    assert seed[0] == 0x01
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


def test_signing_reproduces_the_go_reference_note_byte_for_byte() -> None:
    verifier = parse_vkey(GO_VKEY)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    public = go_private_key().public_key().public_bytes(*raw)
    assert verifier.public_key == public and verifier.vkey() == GO_VKEY
    line = sign_note_line("PeterNeumann", public, GO_TEXT, go_private_key().sign)
    assert line.line() == GO_SIG
    note = parse_note(GO_TEXT + "\n" + GO_SIG)
    assert note.text == GO_TEXT and [v for v, _ in verified_by(note, [verifier])] == [verifier]
    forged = parse_note(GO_TEXT.replace("cryptography", "cryptographY") + "\n" + GO_SIG)
    with pytest.raises(NoteError, match="does not verify"):
        verified_by(forged, [verifier])
    assert verified_by(note, []) == []  # unknown keys are ignored, not trusted


@pytest.mark.parametrize(
    "vkey",
    [
        GO_VKEY.replace("c74f20a3", "cc469956"),  # the key id of another key
        GO_VKEY[:-2],  # truncated key
        GO_VKEY.replace("PeterNeumann", "Peter Neumann"),  # a space in the name
        "PeterNeumann+c74f20a3",
        GO_VKEY.replace("+ARpc", "+AhPc"),  # another algorithm byte
    ],
)
def test_mangled_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_vkey(vkey)


def test_the_spec_checkpoint_and_its_cosignature_parse() -> None:
    note = parse_note(SPEC_NOTE)
    checkpoint = parse_checkpoint(note.text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.text() == SPEC_CHECKPOINT == note.text
    log_sig, witness_sig = note.signatures
    assert log_sig.name == "example.com/behind-the-sofa" and len(log_sig.signature) == 64
    assert witness_sig.name == "witness.example.com/w1" and len(witness_sig.signature) == 72
    # the example's timestamp is the one in the spec's example signed message
    assert cosignature_timestamp(witness_sig) == 1679315147
    assert cosignature_message(1679315147, SPEC_CHECKPOINT) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "o\n012\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # leading zero
        "o\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx\n",  # not 32 bytes
        "o\n12\n",  # no root
        "\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # empty origin
        "o\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",  # no final newline
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


def test_a_cosignature_is_timestamped_and_keyed_as_tlog_cosignature_says() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    line = cosign_line("witness.test/w", public, 1700000000, SPEC_CHECKPOINT, key.sign)
    assert line.key_id == key_id("witness.test/w", SIG_COSIGNATURE_V1, public)
    assert line.signature[:8] == (1700000000).to_bytes(8, "big")
    verifier = cosigner_verifier("witness.test/w", public)
    assert parse_vkey(verifier.vkey()) == verifier
    assert verified_by(Note(SPEC_CHECKPOINT, (line,)), [verifier])
    other = Checkpoint("example.com/behind-the-sofa", 20852164, bytes(32)).text()
    with pytest.raises(NoteError):
        verified_by(Note(other, (line,)), [verifier])


def test_add_checkpoint_bodies_round_trip_the_spec_example() -> None:
    proof = [
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
        "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
        "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
        "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
    ]
    body = ("old 20852014\n" + "".join(f"{p}\n" for p in proof) + "\n" + SPEC_NOTE).encode()
    request = parse_request(body)
    assert request.old_size == 20852014 and [base64.b64encode(h).decode() for h in request.proof] == proof
    assert request.note == SPEC_NOTE
    assert request_body(request.old_size, request.proof, request.note) == body
    for bad in (b"old 01\n\n" + SPEC_NOTE.encode(), b"old 1\nnot base64\n\n", b"new 1\n\n"):
        with pytest.raises(NoteError):
            parse_request(bad)


def test_a_pinned_checkpoint_names_truncation_fork_and_regrowth() -> None:
    leaves = [merkle.hash_leaf(bytes([i])) for i in range(8)]
    other = leaves[:3] + [merkle.hash_leaf(b"x")] * 5

    def root_at(tree: list[bytes]) -> object:
        return lambda n: merkle.root_of(tree[:n])

    pin = Pinned(6, merkle.root_of(leaves[:6]), "test")
    assert pinned_fault(pin, 8, root_at(leaves)) is None
    assert pinned_fault(pin, 6, root_at(leaves)) is None
    assert pinned_fault(pin, 5, root_at(leaves))[0] == "truncated"  # type: ignore[index]
    assert pinned_fault(pin, 6, root_at(other))[0] == "fork"  # type: ignore[index]
    assert pinned_fault(pin, 8, root_at(other))[0] == "regrown"  # type: ignore[index]
    assert parse_since(f"6:{pin.root_hash.hex()}") == Pinned(6, pin.root_hash, "--since")
    with pytest.raises(InvalidInput):
        parse_since("6:abc")
