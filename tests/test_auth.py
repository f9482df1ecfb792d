"""API keys against a real server: 401 without/with a bad or revoked key, 403 for a
non-admin on admin routes, open health/metrics, keys stored only hashed, and
INGOT_REQUIRE_AUTH before any key exists. Keys are made with the real ``ingot keys`` CLI."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from authutil import create_key, ingot, isolated_data_dir
from serverutil import RunningServer

pytestmark = pytest.mark.slow  # its own keyed server and key CLI runs, ~25 s


@pytest.fixture(scope="module")
def tenants(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    state = isolated_data_dir(data_dir, tmp_path_factory.mktemp("auth"))
    keys = {
        "admin": create_key(state, "ops", "--admin"),
        "alice": create_key(state, "alice", "--groups", "finance,hr"),
        "bob": create_key(state, "bob"),
    }
    srv = RunningServer(state, "--parallel", "2", "--context-length", "512", "--ranking-model", "none")
    yield srv, keys, state
    srv.stop()


def _get(srv: RunningServer, path: str, key: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{srv.root}{path}", headers=headers, timeout=30, **kw)


def _assert_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    err = r.json()["error"]
    assert err["type"] == "authentication_error" and err["code"] == "invalid_api_key"
    assert set(err) == {"message", "type", "param", "code"}
    assert r.headers["www-authenticate"] == "Bearer"


def test_no_key_is_401_on_every_protected_route(tenants):
    srv, _, _ = tenants
    for path in ("/v1/models", "/v1/metadata", "/v1/usage", "/v1/keys", "/tokenizer_info", "/v1/collections"):
        _assert_401(_get(srv, path))
    _assert_401(httpx.post(f"{srv.base_url}/chat/completions", json={"messages": []}, timeout=30))
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=srv.base_url, api_key="sk-not-a-key", max_retries=0).models.list()


def test_bad_keys_are_401(tenants):
    srv, keys, _ = tenants
    real = keys["alice"]["key"]
    tampered = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for presented in (tampered, "sk-ingot-0000000000000000-" + "x" * 43, "garbage", real.upper()):
        _assert_401(_get(srv, "/v1/models", presented))
    r = httpx.get(f"{srv.base_url}/models", headers={"Authorization": f"Basic {real}"}, timeout=30)
    _assert_401(r)


def test_valid_key_serves_chat_with_the_openai_sdk(tenants):
    srv, keys, _ = tenants
    client = openai.OpenAI(base_url=srv.base_url, api_key=keys["alice"]["key"], max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Say hi"}], max_tokens=5
    )
    assert reply.choices[0].message.content and reply.usage.completion_tokens >= 1


def test_health_and_metrics_stay_open(tenants):
    srv, _, _ = tenants
    assert _get(srv, "/v1/health/live").status_code == 200
    assert _get(srv, "/v1/health/ready").status_code == 200
    metrics = _get(srv, "/v1/metrics")
    assert metrics.status_code == 200 and "ingot_auth_failures_total" in metrics.text
    assert _get(srv, "/metrics").status_code == 200
    assert _get(srv, "/openapi.json").status_code == 200


def test_non_admin_gets_403_on_admin_routes(tenants):
    srv, keys, _ = tenants
    alice = {"Authorization": f"Bearer {keys['alice']['key']}"}
    for method, path, body in (
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"name": "sneaky", "admin": True}),
        ("DELETE", f"/v1/keys/{keys['bob']['id']}", None),
        ("DELETE", "/v1/collections/anything", None),
    ):
        r = httpx.request(method, f"{srv.root}{path}", headers=alice, json=body, timeout=30)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["type"] == "permission_error"
    # bob is still valid: alice's DELETE did not go through
    assert _get(srv, "/v1/models", keys["bob"]["key"]).status_code == 200
    metrics = _get(srv, "/v1/metrics").text
    assert 'ingot_auth_failures_total{reason="forbidden"}' in metrics


def test_admin_manages_keys_over_http(tenants):
    srv, keys, _ = tenants
    admin = {"Authorization": f"Bearer {keys['admin']['key']}"}
    made = httpx.post(f"{srv.base_url}/keys", headers=admin, json={"name": "carol", "groups": ["legal"], "rpm": 100},
                      timeout=30)
    assert made.status_code == 201, made.text
    carol = made.json()
    assert carol["key"].startswith("sk-ingot-") and carol["groups"] == ["legal"] and carol["admin"] is False
    assert _get(srv, "/v1/models", carol["key"]).status_code == 200
    listed = httpx.get(f"{srv.base_url}/keys", headers=admin, timeout=30).json()["data"]
    assert {"ops", "alice", "bob", "carol"} <= {k["name"] for k in listed}
    assert all("key" not in k and "secret_sha256" not in k for k in listed)
    dup = httpx.post(f"{srv.base_url}/keys", headers=admin, json={"name": "carol"}, timeout=30)
    assert dup.status_code == 409
    bad = httpx.post(f"{srv.base_url}/keys", headers=admin, json={"name": "x", "groups": ["a b'; drop"]}, timeout=30)
    assert bad.status_code == 400
    gone = httpx.delete(f"{srv.base_url}/keys/{carol['id']}", headers=admin, timeout=30)
    assert gone.status_code == 200 and gone.json()["revoked_at"]
    _assert_401(_get(srv, "/v1/models", carol["key"]))
    assert httpx.delete(f"{srv.base_url}/keys/nope", headers=admin, timeout=30).status_code == 404


def test_revoked_key_is_401_on_the_running_server(tenants):
    srv, keys, state = tenants
    bob = keys["bob"]["key"]
    assert _get(srv, "/v1/models", bob).status_code == 200
    result = ingot(state, "keys", "revoke", "bob")
    assert result.returncode == 0, result.stderr
    _assert_401(_get(srv, "/v1/models", bob))
    listed = ingot(state, "keys", "list", "--all", "--json")
    assert '"revoked_at": null' not in listed.stdout.split('"name": "bob"')[1].split("}")[0]


def test_keys_are_stored_hashed(tenants):
    _, keys, state = tenants
    stored = b"".join(p.read_bytes() for p in state.glob("auth.sqlite3*"))
    for entry in keys.values():
        # sk-ingot-<id>-<secret>; the url-safe secret may itself contain "-".
        secret = entry["key"].removeprefix(f"sk-ingot-{entry['id']}-")
        assert len(secret) >= 40, entry["key"]
        assert entry["id"].encode() in stored  # the file is the store we think it is
        assert secret.encode() not in stored and entry["key"].encode() not in stored


def test_cli_errors_are_one_line_exit_2(tenants):
    _, _, state = tenants
    for args in (("keys", "create", "--name", "alice"), ("keys", "create", "--name", "x", "--admin", "--groups", "g"),
                 ("keys", "revoke", "nobody"), ("keys", "create", "--name", "y", "--rpm", "0")):
        result = ingot(state, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.strip().startswith("error:")


def test_require_auth_without_any_key(tmp_path: Path):
    srv = RunningServer(tmp_path, "--model", "none", "--embedding-model", "none", "--ranking-model", "none",
                        env={"INGOT_REQUIRE_AUTH": "1", "INGOT_PUBLIC_METRICS": "0"})
    try:
        _assert_401(_get(srv, "/v1/models"))
        _assert_401(_get(srv, "/v1/metrics"))  # private metrics take a key too
        assert _get(srv, "/v1/health/live").status_code == 200
    finally:
        srv.stop()
