"""The authentication benchmark compares what it says it compares: two APIs of one stack, one
taking only the function key, the other only a bearer token (a few rounds here; `make bench
BENCH_ARGS=api-auth` runs 200)."""

from __future__ import annotations

import httpx

from scripts import bench_api_auth


def test_the_two_apis_admit_only_their_own_credential_and_every_round_is_timed() -> None:
    with bench_api_auth.two_apis() as (stack, key_api_url):
        assert stack.token_issuer is not None
        token = {"Authorization": f"Bearer {stack.token_issuer.mint()}"}
        key = {"x-functions-key": stack.function_key}
        answers = {
            (api, credential): httpx.get(f"{url}/api/recordings", headers=headers).status_code
            for api, url in (("key", key_api_url), ("token", stack.api_url))
            for credential, headers in (("key", key), ("token", token))
        }
        key_samples, token_samples = bench_api_auth.run(
            stack, key_api_url, iterations=3, warmup=1, think_ms=0
        )
        checks = bench_api_auth.token_check_microseconds(stack, stack.token_issuer.mint(), 5)

    assert answers == {
        ("key", "key"): 200,
        ("key", "token"): 401,
        ("token", "key"): 401,
        ("token", "token"): 200,
    }
    for samples in (key_samples, token_samples):
        assert {op: len(values) for op, values in samples.values.items()} == dict.fromkeys(
            bench_api_auth.MEASURED, 3
        )
    assert len(checks) == 5 and min(checks) > 0
    table = bench_api_auth.markdown_table(key_samples, token_samples, 3, checks)
    assert "The token check alone, in process against cached keys (5 checks): p50 " in table
    assert [line.split("|")[1].strip() for line in table.splitlines()[4:10]] == list(
        bench_api_auth.MEASURED
    )
