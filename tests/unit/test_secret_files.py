"""Secrets as files (compose `secrets:` mounts at /run/secrets): the *_FILE settings of linker and publisher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.linker.settings import DEV_PERSON_ID_KEY, LinkerSettings
from services.publisher.settings import PublisherSettings

SECRET = "a-person-id-key-from-a-file-0123456789"


def test_the_linker_reads_its_person_id_key_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "linker_person_id_key"
    key_file.write_text(SECRET + "\n")
    monkeypatch.setenv("REGSOSEK_LINKER_PERSON_ID_KEY", "the-env-value-loses")
    monkeypatch.setenv("REGSOSEK_LINKER_PERSON_ID_KEY_FILE", str(key_file))
    assert LinkerSettings().person_id_key.get_secret_value() == SECRET
    monkeypatch.delenv("REGSOSEK_LINKER_PERSON_ID_KEY_FILE")
    monkeypatch.delenv("REGSOSEK_LINKER_PERSON_ID_KEY")
    assert LinkerSettings().person_id_key.get_secret_value() == DEV_PERSON_ID_KEY


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), ("  \n", "is empty")])
def test_a_missing_or_empty_key_file_is_a_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    with pytest.raises(ValidationError, match=message):
        LinkerSettings(person_id_key_file=key_file)


def test_the_publisher_reads_pseudonym_keys_from_a_json_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "publisher_pseudonym_keys.json"
    keys_file.write_text(json.dumps({"kemensos": "k" * 40, "bpjs": "b" * 40}))
    settings = PublisherSettings(pseudonym_keys_file=keys_file, pseudonym_keys={"bpjs": "e" * 40})
    assert settings.secrets() == {"kemensos": b"k" * 40, "bpjs": b"e" * 40}  # env entries win


@pytest.mark.parametrize(("content", "message"), [("{not json", "not valid JSON"), ('["x"]', "JSON object")])
def test_a_broken_keys_file_names_the_file_and_no_secret(tmp_path: Path, content: str, message: str) -> None:
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        PublisherSettings(pseudonym_keys_file=keys_file).secrets()
    assert str(keys_file) in str(caught.value)
