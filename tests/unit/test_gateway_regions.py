"""Team tokens bound to regions: the tokens format, the 403 outside a team's regions, revision bounds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from contracts.submission import MAX_REVISION
from services.gateway.app import TEAM_HEADER, build_app
from services.gateway.auth import TeamGrant, TeamTokens
from services.gateway.settings import GatewaySettings, GatewaySettingsError, load_tokens_file
from tests.support.gateway import FakeSubmissionProducer, sample_submission

REGENCY_TOKEN = "regency-token-0123456789abcdef"  # team-3603-a: all of regency 3603
DISTRICT_TOKEN = "district-token-0123456789abcdef"  # team-3171-b: district 3171010 only
LEGACY_TOKEN = "legacy-token-0123456789abcdef"  # old format: every region
TOKENS = {
    REGENCY_TOKEN: {"team": "team-3603-a", "regions": ["3603"]},
    DISTRICT_TOKEN: {"team": "team-3171-b", "regions": ["3171010", "3172"]},
    LEGACY_TOKEN: "team-any",
}
IN_3603 = "3603010001000100001001"
IN_3171010 = "3171010002000100001001"
IN_3171020 = "3171020002000100001001"


@pytest.fixture
def producer() -> FakeSubmissionProducer:
    return FakeSubmissionProducer()


@pytest.fixture
def client(producer: FakeSubmissionProducer) -> Iterator[TestClient]:
    with TestClient(build_app(GatewaySettings(tokens=TOKENS), producer=producer)) as test_client:
        yield test_client


def _body(family_key: str, revision: int = 1) -> bytes:
    doc = sample_submission(1)
    doc["family_key"] = {
        "province": family_key[0:2],
        "regency": family_key[2:4],
        "district": family_key[4:7],
        "village": family_key[7:10],
        "sls": family_key[10:14],
        "sub_sls": family_key[14:16],
        "building_serial": family_key[16:19],
        "family_serial": family_key[19:22],
    }
    doc["revision"] = revision
    return json.dumps(doc).encode()


def _post(client: TestClient, token: str, body: bytes) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    response = client.post("/v1/submissions", content=body, headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("token", "family_key", "status"),
    [
        (REGENCY_TOKEN, IN_3603, 202),
        (REGENCY_TOKEN, IN_3171010, 403),
        (DISTRICT_TOKEN, IN_3171010, 202),
        (DISTRICT_TOKEN, IN_3171020, 403),  # same regency, another district
        (DISTRICT_TOKEN, "3172050002000100001001", 202),  # its second region, a whole regency
        (DISTRICT_TOKEN, IN_3603, 403),
        (LEGACY_TOKEN, IN_3603, 202),
        (LEGACY_TOKEN, IN_3171020, 202),
    ],
)
def test_a_team_writes_only_its_regions(
    client: TestClient, producer: FakeSubmissionProducer, token: str, family_key: str, status: int
) -> None:
    code, body = _post(client, token, _body(family_key))
    assert code == status
    if status == 202:
        assert [r.key for r in producer.records] == [family_key.encode()]
    else:
        assert producer.records == []
        team = TOKENS[token]["team"]  # type: ignore[index]
        assert (body["status"], body["detail"]) == (  # type: ignore[index]
            403,
            f"the family lies outside the regions team {team!r} may submit",
        )


def test_the_403_echoes_nothing_the_device_sent(client: TestClient, producer: FakeSubmissionProducer) -> None:
    raw = _body(IN_3171020)
    code, body = _post(client, REGENCY_TOKEN, raw)
    assert code == 403
    doc = json.loads(raw)
    text = json.dumps(body)
    sent = [
        doc["head_name"],
        doc["members"][0]["nik"],
        doc["members"][0]["name"],
        doc["submission_id"],
        IN_3171020,
        IN_3171020[:7],
        REGENCY_TOKEN,
    ]
    assert [value for value in sent if value and value in text] == []


def test_the_team_header_carries_the_team_of_a_region_token(
    client: TestClient, producer: FakeSubmissionProducer
) -> None:
    assert _post(client, DISTRICT_TOKEN, _body(IN_3171010))[0] == 202
    assert producer.records[0].headers == [(TEAM_HEADER, b"team-3171-b")]


@pytest.mark.parametrize(("revision", "status"), [(MAX_REVISION, 202), (2**31, 422), (10**30, 422), (0, 422)])
def test_revisions_beyond_the_contract_are_422(
    client: TestClient, producer: FakeSubmissionProducer, revision: int, status: int
) -> None:
    code, body = _post(client, REGENCY_TOKEN, _body(IN_3603, revision))
    assert code == status
    if status == 422:
        assert [e["loc"] for e in body["errors"]] == [["body", "revision"]]  # type: ignore[index,union-attr]
        assert producer.records == []


def test_tokens_file_in_both_formats(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    assert load_tokens_file(path) == {
        REGENCY_TOKEN: TeamGrant("team-3603-a", frozenset({"3603"})),
        DISTRICT_TOKEN: TeamGrant("team-3171-b", frozenset({"3171010", "3172"})),
        LEGACY_TOKEN: TeamGrant("team-any", None),
    }
    settings = GatewaySettings(tokens_file=path)
    assert settings.all_tokens() == {
        REGENCY_TOKEN: "team-3603-a",
        DISTRICT_TOKEN: "team-3171-b",
        LEGACY_TOKEN: "team-any",
    }
    assert TeamTokens(settings.grants()).unrestricted() == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"team": "t", "regions": []}, "needs a non-empty list of region codes"),
        ({"team": "t"}, "each entry needs exactly a team and its regions"),
        ({"team": "t", "regions": ["3603"], "role": "x"}, "each entry needs exactly a team and its regions"),
        ({"team": "t", "regions": ["360"]}, r"region codes \['360'\] that are not 2, 4, 7 or 10 digits"),
        ({"team": "t", "regions": ["36O3"]}, "not 2, 4, 7 or 10 digits"),
        ({"team": "t", "regions": "3603"}, "needs a non-empty list of region codes"),
        (5, "must be a JSON object"),
    ],
)
def test_malformed_entries_are_refused_without_naming_the_token(tmp_path: Path, entry: object, message: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({REGENCY_TOKEN: entry}))
    with pytest.raises(GatewaySettingsError, match=message) as from_file:
        load_tokens_file(path)
    with pytest.raises(ValidationError, match=message) as from_env:
        GatewaySettings(tokens={REGENCY_TOKEN: entry})
    assert REGENCY_TOKEN not in str(from_file.value) + str(from_env.value)
