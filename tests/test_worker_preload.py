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
