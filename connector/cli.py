"""The ``connector`` command: worker, sandbox, run (the whole stack), send-sample, check-config."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from importlib import resources
from pathlib import Path

import requests

from connector.errors import ConfigError

DEMO_TENANTS = Path("config/demo-tenants.toml")


def _load_settings():  # type: ignore[no-untyped-def]
    from connector.settings import load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")


def cmd_worker(args: argparse.Namespace) -> None:
    """Run an RQ worker on every connector queue (scheduler on)."""
    from connector.queue import connect
    from connector.worker import run_worker

    settings = _load_settings()
    from connector.worker import WORKER_CLASSES

    run_worker(
        connect(settings.redis_url),
        burst=args.burst,
        wait_for_retries=args.wait_retries,
        worker_class=WORKER_CLASSES[args.worker_class],
    )


def cmd_sandbox(args: argparse.Namespace) -> None:
    """Serve the vendor sandboxes until interrupted."""
    from connector.sandbox import SandboxServer

    server = SandboxServer(args.host, args.port)
    print(f"sandbox listening on {server.url} (vendors: {server.url}/)", flush=True)
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass


def sample_order() -> bytes:
    """The bundled sample Shopify order with a fresh order id (so each send is a new order)."""
    order = json.loads(resources.files("connector.sandbox").joinpath("samples/shopify-order.json").read_text())
    order_id = random.randint(5_000_000_000_000, 6_999_999_999_999)
    order["id"] = order_id
    order["admin_graphql_api_id"] = f"gid://shopify/Order/{order_id}"
    return json.dumps(order).encode()


def send_voucherify_sample(args: argparse.Namespace) -> None:
    """Sign one sample Voucherify customer.* event with the tenant's first secret and POST it."""
    from connector.sandbox.relay_samples import voucherify_events

    settings = _load_settings()
    tenant = settings.tenants.get(args.tenant)
    if tenant is None or "voucherify" not in tenant.sources:
        sys.exit(f"tenant {args.tenant!r} has no [sources.voucherify] table in {settings.tenants_file}")
    secret = tenant.sources["voucherify"].secrets[0].get_secret_value()  # type: ignore[attr-defined]
    headers, body = next(voucherify_events(1, secret))
    url = f"{args.url.rstrip('/')}/webhooks/{args.tenant}/voucherify"
    response = requests.post(url, data=body, headers=headers, timeout=10)
    print(f"POST {url} -> {response.status_code} {response.text.strip()}")
    if response.status_code >= 300:
        sys.exit(1)


def cmd_send_sample(args: argparse.Namespace) -> None:
    """Sign the sample order with the tenant's first Shopify secret and POST it."""
    if getattr(args, "source", "shopify") == "voucherify":
        send_voucherify_sample(args)
        return
    settings = _load_settings()
    tenant = settings.tenants.get(args.tenant)
    if tenant is None or "shopify" not in tenant.sources:
        sys.exit(f"tenant {args.tenant!r} has no [sources.shopify] table in {settings.tenants_file}")
    config = tenant.sources["shopify"]
    secret = config.secrets[0].get_secret_value()  # type: ignore[attr-defined]
    body = sample_order()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    url = f"{args.url.rstrip('/')}/webhooks/{args.tenant}/shopify"
    response = requests.post(
        url,
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": config.shop_domain,  # type: ignore[attr-defined]
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-API-Version": "2025-10",
        },
    )
    print(f"POST {url} -> {response.status_code} {response.text.strip()}")
    if response.status_code >= 300:
        sys.exit(1)


def cmd_check_config(args: argparse.Namespace) -> None:
    """Validate settings and the tenants file, print a summary."""
    settings = _load_settings()
    for name, tenant in settings.tenants.items():
        sources = ", ".join(tenant.sources) or "none"
        print(f"{name}: {tenant.loyalty.platform} at {tenant.loyalty.base_url}; sources: {sources}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> None:
    """Start Redis (unless REDIS_URL), the sandbox, gunicorn and a worker; Ctrl-C stops all."""
    from connector.embedded_redis import EmbeddedRedis

    # SIGTERM (a process manager, `kill`) stops everything like Ctrl-C does; so does SIGINT when
    # started in the background, where the shell would otherwise leave it ignored. The children
    # run in their own sessions, so without this they would outlive us.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    env = dict(os.environ)
    embedded = None
    if not env.get("REDIS_URL"):
        embedded = EmbeddedRedis(Path("var/redis"), port=args.redis_port).start()
        env["REDIS_URL"] = embedded.local_url
        print(f"redis     embedded at {embedded.local_url} and {embedded.url} (data in var/redis)")
    else:
        print(f"redis     {env['REDIS_URL']}")
    tenants_file = Path(env.get("CONNECTOR_TENANTS_FILE", "config/tenants.toml"))
    if not tenants_file.exists():
        tenants_file = DEMO_TENANTS
        env["CONNECTOR_TENANTS_FILE"] = str(tenants_file)
        env.setdefault("DEMO_SHOPIFY_SECRET", "demo-shopify-secret")
        print(f"tenants   {tenants_file} (demo: create config/tenants.toml for your own)")
    else:
        print(f"tenants   {tenants_file}")
    env.setdefault("CONNECTOR_ADMIN_PASSWORD", "")
    bindir = Path(sys.executable).parent
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, argv: list[str]) -> None:
        procs.append((name, subprocess.Popen(argv, env=env, start_new_session=True)))

    def stop_all() -> None:
        for _name, proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if embedded:
            embedded.stop()

    try:
        start("sandbox", [str(bindir / "connector"), "sandbox", "--port", str(args.sandbox_port)])
        start("web", [str(bindir / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"])
        start("worker", [str(bindir / "connector"), "worker"])
        time.sleep(2.0)
        for name, proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with status {proc.returncode}; see the output above")
        settings_env = env.get("CONNECTOR_TENANTS_FILE")
        print("\nThe connector is running. Ctrl-C stops everything.\n")
        print("  webhook URLs   http://127.0.0.1:8000/webhooks/<tenant>/<source>")
        print("                 e.g. http://127.0.0.1:8000/webhooks/demo/shopify")
        print("  health         http://127.0.0.1:8000/readyz   metrics: http://127.0.0.1:8000/metrics")
        print(f"  sandbox        http://127.0.0.1:{args.sandbox_port}/glu/_sandbox/state")
        print("\nSend a signed sample Shopify order (in another terminal):\n")
        print(
            f"  CONNECTOR_TENANTS_FILE={settings_env} DEMO_SHOPIFY_SECRET={env.get('DEMO_SHOPIFY_SECRET', '...')} "
            f".venv/bin/connector send-sample --tenant demo"
        )
        print(f"\nthen see it arrive:  curl -s http://127.0.0.1:{args.sandbox_port}/glu/_sandbox/state\n", flush=True)
        print(
            "A loyalty event back out (Voucherify → Klaviyo sandbox):\n\n  "
            f"CONNECTOR_TENANTS_FILE={settings_env} DEMO_SHOPIFY_SECRET={env.get('DEMO_SHOPIFY_SECRET', '...')} "
            ".venv/bin/connector send-sample --tenant demo --source voucherify"
            f"\n  then: curl -s http://127.0.0.1:{args.sandbox_port}/klaviyo/_sandbox/state\n",
            flush=True,
        )
        while all(proc.poll() is None for _n, proc in procs):
            time.sleep(0.5)
        dead = [name for name, proc in procs if proc.poll() is not None]
        print(f"{', '.join(dead)} stopped; shutting down", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        stop_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``connector`` console script."""
    parser = argparse.ArgumentParser(prog="connector", description="The loyalty connector.")
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run an RQ worker (JSON serializer, scheduler on)")
    worker.add_argument("--burst", action="store_true", help="process everything due, then exit")
    worker.add_argument(
        "--wait-retries",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --burst: also wait for retries due within this many seconds",
    )
    worker.add_argument(
        "--worker-class",
        choices=("fork", "simple"),
        default=os.environ.get("CONNECTOR_WORKER_CLASS", "fork"),
        help="fork: a work horse per job (RQ's default, crash isolation); simple: jobs in-process "
        "(faster for short jobs). Default: $CONNECTOR_WORKER_CLASS or fork",
    )
    worker.set_defaults(func=cmd_worker)

    sandbox = sub.add_parser("sandbox", help="serve the local vendor sandboxes")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8100)
    sandbox.set_defaults(func=cmd_sandbox)

    run = sub.add_parser("run", help="start Redis, sandbox, web and worker (make run)")
    run.add_argument("--sandbox-port", type=int, default=8100)
    run.add_argument("--redis-port", type=int, default=6390)
    run.set_defaults(func=cmd_run)

    send = sub.add_parser("send-sample", help="send a signed sample Shopify orders/paid webhook")
    send.add_argument("--tenant", default="demo")
    send.add_argument("--url", default="http://127.0.0.1:8000")
    send.add_argument("--source", choices=["shopify", "voucherify"], default="shopify")
    send.set_defaults(func=cmd_send_sample)

    check = sub.add_parser("check-config", help="validate the environment and the tenants file")
    check.set_defaults(func=cmd_check_config)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
