"""A worker loads every registered client before it forks: the registries name them lazily (so
the web tier never loads one), and a fork worker's horse that imported them itself paid for it on
every job (delivery fell from 20 to 13 webhooks/s in `make bench`)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_preload_imports_every_registered_client_in_the_parent():
    code = textwrap.dedent(
        """
        import sys
        from connector.apps.registry import APPS
        from connector.esps.registry import ESPS
        from connector.platforms.registry import PLATFORMS
        from connector.pms.registry import PMS_APIS
        from connector.worker import preload
        modules = {r.client.module for reg in (PLATFORMS, ESPS, PMS_APIS, APPS) for r in reg.values()}
        assert not modules & set(sys.modules), "loaded before preload"
        preload()
        print(sorted(modules - set(sys.modules)))
        """
    )
    env = {
        **os.environ,
        "CONNECTOR_TENANTS_FILE": str(ROOT / "config" / "demo-tenants.toml"),
        "DEMO_SHOPIFY_SECRET": "x",
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    assert out.stdout.strip() == "[]"


def _run(code: str, redis_url: str) -> list[str]:
    env = {
        **os.environ,
        "CONNECTOR_TENANTS_FILE": str(ROOT / "config" / "demo-tenants.toml"),
        "DEMO_SHOPIFY_SECRET": "a-shopify-secret-for-the-demo",
        "REDIS_URL": redis_url,
    }
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT, env=env, check=True
    )
    return out.stdout.split()


WARM_UP_IN_A_HORSE = """
    import os, sys
    from connector import jobs, redaction
    from connector.worker import warm_up
    assert "netrc" not in sys.modules
    warm_up()
    read, write = os.pipe()
    if os.fork() == 0:  # a horse: what its first job does is already done
        before = redaction._cached.cache_info()
        redaction.redact("some text", jobs._all_secrets())
        after = redaction._cached.cache_info()
        fresh = jobs.redis.cache_info().misses
        jobs.redis()
        built = jobs.redis.cache_info().misses - fresh
        os.write(write, f"{after.misses - before.misses} {built} {'netrc' in sys.modules}".encode())
        os._exit(0)
    os.wait()
    print(os.read(read, 100).decode())
"""


def test_warm_up_leaves_a_forked_horse_nothing_to_build(redis_url):
    """The redactor of the tenants' secrets (regular expressions of every encoding), the Redis
    client and the module ``requests`` imports per request: built once, before any horse."""
    assert _run(WARM_UP_IN_A_HORSE, redis_url) == ["0", "0", "True"]


def test_warm_up_without_redis_leaves_it_to_the_first_job():
    from connector.embedded_redis import free_port

    assert _run(
        "from connector.worker import warm_up; warm_up(); print('started')", f"redis://127.0.0.1:{free_port()}/0"
    ) == ["started"]
