"""The ``connector`` command: worker, sandbox, run (the whole stack), send-sample, check-config."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging  # issue 15 logs
import os
import random
import signal
import socket
import sys
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from connector.errors import ConfigError

if TYPE_CHECKING:
    from connector.embedded_redis import EmbeddedRedis

DEMO_TENANTS = Path("config/demo-tenants.toml")


def _print_problems(problems: list[str]) -> None:
    noun = "error" if len(problems) == 1 else "errors"
    print(f"{len(problems)} configuration {noun}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _load_settings():  # type: ignore[no-untyped-def]
    from connector.settings import config_problems, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        _print_problems(config_problems(exc))
        sys.exit(1)


def _warn_if_not_durable(redis_url: str) -> None:
    """Print a warning when the Redis server can lose acknowledged webhooks (see durability.py)."""
    from redis.exceptions import RedisError

    from connector.durability import check_durability
    from connector.queue import connect

    client = connect(redis_url)
    try:
        client.ping()
        durability = check_durability(client)
    except RedisError:
        return  # not reachable now: the worker says so itself, and waits for it
    finally:
        client.close()
    if not durability.durable:
        # -- issue 15 logs: a log line in the process's one format (it was a bare print) --
        logging.getLogger("connector.cli").warning("Redis durability: %s", durability.message)
        # -- end issue 15 logs --


WORKER_CLASS_CHOICES = ("fork", "simple")


def worker_class_problem() -> str | None:
    """What is wrong with ``CONNECTOR_WORKER_CLASS`` or ``CONNECTOR_WORKER_PROCESSES`` (argparse
    does not check a default)."""
    value = os.environ.get("CONNECTOR_WORKER_CLASS")
    if value is not None and value not in WORKER_CLASS_CHOICES:
        return f"CONNECTOR_WORKER_CLASS: {value!r} is not one of {', '.join(WORKER_CLASS_CHOICES)}"
    # -- issue 16 worker: the pool's size --
    processes = os.environ.get("CONNECTOR_WORKER_PROCESSES")
    if processes and not (processes.isdigit() and int(processes) >= 1):
        return f"CONNECTOR_WORKER_PROCESSES: {processes!r} is not a whole number >= 1"
    # -- end issue 16 worker --
    return None


def _processes(value: str | int) -> int:
    """``--processes``: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 1")
    return number


def cmd_worker(args: argparse.Namespace) -> None:
    """Run RQ workers on every connector queue (scheduler on): ``--processes`` of them."""
    from connector.queue import connect
    from connector.worker import run_worker

    settings = _load_settings()
    from connector.worker import WORKER_CLASSES

    problem = worker_class_problem()
    if args.worker_class not in WORKER_CLASSES or problem:
        _print_problems([problem or f"--worker-class: {args.worker_class!r} is not known"])
        sys.exit(1)
    processes = args.processes or int(os.environ.get("CONNECTOR_WORKER_PROCESSES") or 0)

    _warn_if_not_durable(settings.redis_url)
    redis = connect(settings.redis_url)
    problem = secret_key_problem(settings, redis)
    if problem:
        _print_problems([problem])
        sys.exit(1)
    run_worker(
        redis,
        burst=args.burst,
        wait_for_retries=args.wait_retries,
        worker_class=WORKER_CLASSES[args.worker_class],
        processes=processes or (1 if args.burst else os.cpu_count() or 1),
    )


def secret_key_problem(settings: Any, redis: Any) -> str | None:
    """Why ``CONNECTOR_SECRET_KEY`` cannot open what is sealed in Redis (the Shopify app's
    installations, the tenant store: another key sealed them), else ``None``; a start-up error,
    never a silent decrypt failure later."""
    from connector.secretbox import WrongSecretKeyError
    from connector.tenant_store import TenantStore
    from connector.vendors.shopify.installations import InstallationStore

    key = settings.secret_key.get_secret_value()
    try:
        if settings.shopify_app_enabled:
            InstallationStore.open(redis, key)
        if settings.tenant_store_enabled:
            TenantStore.open(redis, key)
    except WrongSecretKeyError as exc:
        return str(exc)  # names CONNECTOR_SECRET_KEY
    return None


def cmd_sandbox(args: argparse.Namespace) -> None:
    """Serve the vendor sandboxes until interrupted."""
    from connector.sandbox.server import SandboxServer

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
    secret = tenant.sources["voucherify"].secrets[0].get_secret_value()
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
    secret = config.secrets[0].get_secret_value()
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
            "X-Shopify-Shop-Domain": config.shop_domain,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-API-Version": "2026-10",
        },
    )
    print(f"POST {url} -> {response.status_code} {response.text.strip()}")
    if response.status_code >= 300:
        sys.exit(1)


def cmd_check_config(args: argparse.Namespace) -> None:
    """Validate the environment and the tenants file (every error at once), reach Redis and judge
    its durability; print a summary. Exit status 1 on any error."""
    from redis.exceptions import RedisError

    from connector.durability import check_durability
    from connector.queue import connect
    from connector.settings import Settings, config_problems, load_settings

    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems = config_problems(exc)
    worker_class = worker_class_problem()
    if worker_class:
        problems.append(worker_class)
    redis_url = settings.redis_url if settings else os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis_line = ""
    if not args.no_redis and not any(problem.startswith("REDIS_URL:") for problem in problems):
        client = connect(redis_url)
        try:
            client.ping()
        except RedisError as exc:
            problems.append(f"REDIS_URL: cannot reach Redis at {redacted_redis_url(redis_url)}: {exc}")
        else:
            durability = check_durability(client)
            if settings is not None and (key_problem := secret_key_problem(settings, client)):
                problems.append(key_problem)
            redis_line = f"redis: {redacted_redis_url(redis_url)} answers; "
            redis_line += ("durability: " if durability.durable else "WARNING, durability: ") + durability.message
        finally:
            client.close()
    if problems:
        _print_problems(problems)
        sys.exit(1)
    assert settings is not None
    for name, tenant in settings.tenants.items():
        sources = ", ".join(tenant.sources) or "none"
        print(f"{name}: {tenant.loyalty.platform} at {tenant.loyalty.base_url}; sources: {sources}")
    if redis_line and settings.tenant_store_enabled:
        print_stored_tenants(settings)
    if redis_line:
        print(redis_line)


def print_stored_tenants(settings: Any) -> None:
    """The tenant store's tenants (the merchant pages'), with any that is not served and why."""
    directory = _tenant_directory(settings)
    assert directory.tenant_store is not None
    names = directory.tenant_store.names()
    served = directory.all()
    print(f"tenant store: {len(names)} stored tenant{'s' if len(names) != 1 else ''} (the merchant pages')")
    for name in names:
        if directory.is_file_tenant(name):
            print(f"  {name}: WARNING, also in the tenants file, which wins")
        elif name in served:
            tenant = served[name]
            print(f"  {name}: {tenant.loyalty.platform}; sources: {', '.join(tenant.sources) or 'none'}")
        elif problems := directory.problems(name):
            print(f"  {name}: WARNING, not served: {'; '.join(problems)}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_SANDBOX_PORT = 8100
# The sandbox address config/demo-tenants.toml is written for; `connector run` replaces it by
# the address of the sandbox it starts (--sandbox-port) in the copy it writes under var/.
DEMO_SANDBOX_URL = f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}"
RUN_DEMO_TENANTS = Path("var/demo-tenants.toml")


def bind_address(bind: str) -> tuple[str, int] | None:
    """``(host, port)`` of a gunicorn ``bind`` as it binds it; ``None`` for ``unix:``/``fd://``."""
    bind = bind.strip()
    if bind.startswith(("unix:", "fd://")):
        return None
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or (":" in host and not host.startswith("[")):
        host, port = bind, "8000"  # "host" alone (or a bare IPv6 address): gunicorn's default port
    host = host.strip("[]")
    return ("0.0.0.0" if host in ("", "*") else host), int(port)


def bind_url(bind: str) -> str | None:
    """The http:// URL that reaches a gunicorn ``bind``; ``None`` for ``unix:``/``fd://``.

    A wildcard address (``0.0.0.0``, ``::``) is reached on the loopback address.
    """
    address = bind_address(bind)
    if address is None:
        return None
    host, port = address
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif ":" in host:
        host = "[::1]" if host == "::" else f"[{host}]"
    return f"http://{host}:{port}"


def web_url() -> str:
    """Where this machine reaches the web app: from ``CONNECTOR_BIND`` like gunicorn's config."""
    return bind_url(os.environ.get("CONNECTOR_BIND") or DEFAULT_BIND) or bind_url(DEFAULT_BIND) or ""


def redacted_redis_url(url: str) -> str:
    """``url`` with its password (and user name) replaced, for printing."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    credentials, _, host = rest.partition("@")
    return f"{scheme}://{'***:***' if ':' in credentials else '***'}@{host}"


def write_demo_tenants(template: Path, sandbox_url: str, target: Path = RUN_DEMO_TENANTS) -> Path:
    """The demo tenants file with every sandbox URL pointing at ``sandbox_url``; returns ``target``.

    The demo file is written for the default sandbox port, so that it can be read as it is; a
    run on another port must not post into whatever else listens on that port.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    text = template.read_text(encoding="utf-8").replace(DEMO_SANDBOX_URL, sandbox_url.rstrip("/"))
    header = f"# Written by `connector run` from {template} for the sandbox at {sandbox_url}: edit that file.\n"
    target.write_text(header + text, encoding="utf-8")
    return target


def port_in_use(host: str, port: int) -> bool:
    """Whether a TCP listener could not bind ``host:port`` now (SO_REUSEADDR, like gunicorn)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _preflight(bind: str, sandbox_port: int, redis_port: int | None) -> list[str]:
    """Problems that would make a child crash-loop at start, found before anything starts."""
    from connector.settings import config_problems, load_settings

    problems: list[str] = []
    try:
        load_settings()
    except ConfigError as exc:
        problems.extend(f"configuration error: {problem}" for problem in config_problems(exc))
    worker_class = worker_class_problem()
    if worker_class:
        problems.append(f"configuration error: {worker_class}")
    ports = [("127.0.0.1", sandbox_port, "--sandbox-port")]
    if redis_port is not None:
        ports.append(("127.0.0.1", redis_port, "--redis-port"))
    web = bind_address(bind)
    if web is not None:
        ports.append((*web, "CONNECTOR_BIND"))
    for host, port, option in ports:
        if port_in_use(host, port):
            problems.append(f"{host}:{port} is already in use (another `make run`?); choose another with {option}")
    return problems


class _RedisService:
    """The embedded Redis as a supervised service (restarted on the same data and port)."""

    name = "redis"

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server

    def start(self) -> None:
        self.server.start()

    def returncode(self) -> int | None:
        process = self.server.process
        return process.poll() if process else 0

    def signal(self, signum: int) -> None:
        process = self.server.process
        if process is not None and process.poll() is None:
            process.send_signal(signum)  # SIGTERM: Redis writes its append-only file and exits

    def alive(self) -> bool:
        return self.returncode() is None


# -- the Shopify app in `connector run` (issue 13) ----------------------------------------------
DEMO_SHOP = "demo-app-shop.myshopify.com"
"""Not a shop of the demo tenants file (those attach to its tenants, which keep their own platform)."""
DEMO_SECRET_KEY = "demo-connector-secret-key-not-for-production"  # noqa: S105 - the demo's, on purpose
"""The demo's stable ``CONNECTOR_SECRET_KEY`` (it seals the demo shops' tokens in var/redis)."""


def shopify_demo_env(env: os._Environ[str] | dict[str, str], web: str, sandbox_url: str) -> None:
    """In the demo, run the Shopify app against the sandbox's shop admins (unless the operator
    set ``SHOPIFY_API_KEY``, or the web app has no http://127.0.0.1 / localhost URL)."""
    if env.get("SHOPIFY_API_KEY") or not web.startswith(("http://127.0.0.1", "http://localhost")):
        return
    from connector.sandbox.server import DEFAULT_KEYS

    env["SHOPIFY_API_KEY"] = DEFAULT_KEYS["shopify_api_key"]
    env["SHOPIFY_API_SECRET"] = DEFAULT_KEYS["shopify_api_secret"]
    env.setdefault("CONNECTOR_PUBLIC_URL", web)
    env.setdefault("CONNECTOR_SECRET_KEY", DEMO_SECRET_KEY)
    env["CONNECTOR_SHOPIFY_ADMIN_URL"] = f"{sandbox_url}/shopify/{{shop}}"


def shopify_install_link(
    env: os._Environ[str] | dict[str, str], shop: str = DEMO_SHOP, *, now: float | None = None
) -> str | None:
    """The App URL request Shopify would send for ``shop`` (``/shopify/install?hmac=…&shop=…&timestamp=…``,
    signed with ``SHOPIFY_API_SECRET``, valid 10 minutes); ``None`` unless the app is enabled."""
    from connector.vendors.shopify.oauth import signed_query

    public, secret = env.get("CONNECTOR_PUBLIC_URL"), env.get("SHOPIFY_API_SECRET")
    if not env.get("SHOPIFY_API_KEY") or not public or not secret:
        return None
    params = {"shop": shop, "timestamp": str(int(time.time() if now is None else now))}
    return f"{public.rstrip('/')}/shopify/install?{signed_query(params, secret)}"


def print_shopify_install(env: os._Environ[str] | dict[str, str], sandbox_url: str) -> None:
    """The demo shop's install link, when the app runs against this run's sandbox."""
    link = shopify_install_link(env)
    if link is None or not (env.get("CONNECTOR_SHOPIFY_ADMIN_URL") or "").startswith(sandbox_url):
        return
    print(f"  shopify app    install the demo shop: {link}")
    print(f"                 (valid 10 minutes; a fresh one: {sandbox_url}/shopify/_sandbox/install?shop={DEMO_SHOP})")


# -- end of the Shopify app in `connector run` ---------------------------------------------------

DEMO_ADMIN_PASSWORD = "demo-admin"  # noqa: S105 - the demo's support staff password, printed by `make run`


def print_merchant_pages(env: os._Environ[str] | dict[str, str], web: str, demo: bool) -> None:
    """Where the merchant pages are, and in the demo a sign-in link to the demo tenant's."""
    key = env.get("CONNECTOR_SECRET_KEY")
    if not key:
        print("  merchant pages off: set CONNECTOR_SECRET_KEY (a stable key) to enable /app/")
        return
    if demo:
        from connector.merchant_links import make_link_token

        print(f"  merchant pages {web}/app/sign-in?token={make_link_token(key, 'demo')}")
        print("                 (the demo tenant's sign-in link, valid 24 hours, once)")
    else:
        print(f"  merchant pages {web}/app/  (sign-in links: connector merchant-link --tenant T)")
    if env.get("CONNECTOR_ADMIN_PASSWORD"):
        shown = env["CONNECTOR_ADMIN_PASSWORD"] if env["CONNECTOR_ADMIN_PASSWORD"] == DEMO_ADMIN_PASSWORD else "…"
        print(f"  support staff  {web}/app/admin  (password: {shown})")


def cmd_run(args: argparse.Namespace) -> None:
    """Start Redis (unless REDIS_URL), the sandbox, gunicorn and a worker; restart whichever dies;
    Ctrl-C (or SIGTERM) stops web and worker, then the sandbox, then Redis."""
    from connector.durability import check_durability
    from connector.embedded_redis import EmbeddedRedis
    from connector.queue import connect
    from connector.supervisor import CrashLoopError, ProcessService, Service, Supervisor

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    # The environment of every child: what is set here is what they read.
    env = os.environ
    bind = env.get("CONNECTOR_BIND") or DEFAULT_BIND
    web = bind_url(bind) or bind
    sandbox_url = f"http://127.0.0.1:{args.sandbox_port}"
    tenants_file = Path(env.get("CONNECTOR_TENANTS_FILE") or "config/tenants.toml")
    demo = tenants_file.resolve() == DEMO_TENANTS.resolve() or (
        not env.get("CONNECTOR_TENANTS_FILE") and not tenants_file.exists()
    )
    if demo:
        # The demo file is rewritten for this run's sandbox; anything else is the merchant's own.
        tenants_file = write_demo_tenants(DEMO_TENANTS, sandbox_url)
        env["CONNECTOR_TENANTS_FILE"] = str(tenants_file)
        env.setdefault("DEMO_SHOPIFY_SECRET", "demo-shopify-secret")
        shopify_demo_env(env, web, sandbox_url)  # the Shopify app against the sandbox (issue 13)
    embedded_wanted = not env.get("REDIS_URL")
    problems = _preflight(bind, args.sandbox_port, args.redis_port if embedded_wanted else None)
    if problems:
        sys.exit("connector run cannot start:\n  " + "\n  ".join(problems))
    if demo and web.startswith(("http://127.0.0.1", "http://localhost")):
        env.setdefault("CONNECTOR_SECRET_KEY", DEMO_SECRET_KEY)  # the merchant pages need a stable key
        env.setdefault("CONNECTOR_ADMIN_PASSWORD", DEMO_ADMIN_PASSWORD)
    env.setdefault("CONNECTOR_ADMIN_PASSWORD", "")
    services: list[Service] = []
    if embedded_wanted:
        embedded = EmbeddedRedis(Path("var/redis"), port=args.redis_port, die_with_parent=True)
        services.append(_RedisService(embedded))
        env["REDIS_URL"] = embedded.local_url
        print(
            f"redis     embedded at {embedded.local_url} and {embedded.url} "
            f"(data in var/redis, appendfsync {embedded.appendfsync})"
        )
    else:
        print(f"redis     {redacted_redis_url(env['REDIS_URL'])}")
    if demo:
        print(f"tenants   {tenants_file} (the demo, from {DEMO_TENANTS}; create config/tenants.toml for your own)")
    else:
        print(f"tenants   {tenants_file}")
    bindir = Path(sys.executable).parent
    services += [
        ProcessService("sandbox", [str(bindir / "connector"), "sandbox", "--port", str(args.sandbox_port)]),
        ProcessService("web", [str(bindir / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"]),
        ProcessService("worker", [str(bindir / "connector"), "worker"]),
    ]
    supervisor = Supervisor(services, stop_order=[["web", "worker"], ["sandbox"], ["redis"]])
    gave_up = False
    interrupts = 0

    def count_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1

    try:
        supervisor.start()  # Redis first: it answers PING before the others start
        if not embedded_wanted:
            client = connect(env["REDIS_URL"])
            durability = check_durability(client)
            client.close()
            if not durability.durable:
                print(f"WARNING   Redis durability: {durability.message}", file=sys.stderr)
        sample_env = f"CONNECTOR_TENANTS_FILE={tenants_file}"
        if demo:
            sample_env += f" DEMO_SHOPIFY_SECRET={env['DEMO_SHOPIFY_SECRET']}"
        if "CONNECTOR_BIND" in env:
            sample_env += f" CONNECTOR_BIND={env['CONNECTOR_BIND']}"
        print("\nThe connector is running. Ctrl-C stops everything.\n")
        print(f"  webhook URLs   {web}/webhooks/<tenant>/<source>")
        print(f"                 e.g. {web}/webhooks/demo/shopify")
        print(f"  health         {web}/readyz   metrics: {web}/metrics")
        print_shopify_install(env, sandbox_url)
        print_merchant_pages(env, web, demo)
        print(f"  sandbox        {sandbox_url}/glu/_sandbox/state")
        print("\nSend a signed sample Shopify order (in another terminal):\n")
        print(f"  {sample_env} .venv/bin/connector send-sample --tenant demo")
        print(f"\nthen see it arrive:  curl -s {sandbox_url}/glu/_sandbox/state\n")
        print(
            "A loyalty event back out (Voucherify → Klaviyo sandbox):\n\n  "
            f"{sample_env} .venv/bin/connector send-sample --tenant demo --source voucherify"
            f"\n  then: curl -s {sandbox_url}/klaviyo/_sandbox/state\n",
            flush=True,
        )
        while True:
            supervisor.check()
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    except CrashLoopError as exc:
        print(f"connector run: {exc}", file=sys.stderr, flush=True)
        gave_up = True
    finally:
        # A second Ctrl-C while stopping kills what is still running instead of waiting.
        signal.signal(signal.SIGINT, count_interrupt)
        signal.signal(signal.SIGTERM, count_interrupt)
        supervisor.stop(hurry=lambda: interrupts > 0)
    if gave_up:
        sys.exit(1)


# -- connector backfill (Shopify reconciliation on demand, issue 13) ---------------------------


def _backfill_time(value: str, option: str) -> str:
    from connector.vendors.shopify.reconcile import parse_time, shopify_time

    try:
        return shopify_time(parse_time(value))
    except ValueError:
        sys.exit(f"connector backfill: {option} {value!r} is not a date or an ISO 8601 time")


def cmd_backfill(args: argparse.Namespace) -> None:
    """Page through a Shopify tenant's orders updated in [--since, --until] and enqueue a delivery
    for every paid order not delivered yet (--dry-run: list them, change nothing)."""
    from connector import jobs
    from connector.vendors.shopify.orders import search_query
    from connector.vendors.shopify.reconcile import Summary, admin_client, sync_orders
    from connector.vendors.shopify.source import ShopifyConfig

    since = _backfill_time(args.since, "--since")
    until = _backfill_time(args.until, "--until") if args.until else None
    settings = _load_settings()
    directory = jobs.tenants()
    tenant = directory.get(args.tenant)
    if tenant is None:
        sys.exit(f"connector backfill: no tenant {args.tenant!r}")
    source = tenant.sources.get("shopify")
    if not isinstance(source, ShopifyConfig):
        sys.exit(f"connector backfill: tenant {args.tenant!r} has no Shopify source")
    store = directory.store
    token = store.token(source.shop_domain) if store is not None else None
    if token is None:
        sys.exit(
            f"connector backfill: {source.shop_domain} has no installation of the Shopify app "
            "(the Admin API token comes from the installation)"
        )
    skip = tenant.loyalty.skip_reason("shopify")
    if skip and not args.dry_run:
        sys.exit(f"connector backfill: nothing would be posted for {args.tenant!r}: {skip}")
    tty = sys.stderr.isatty()

    def progress(summary: Summary) -> None:
        line = f"backfill {args.tenant}: page {summary.pages}, {summary.seen} orders, {summary.paid} paid"
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    client = admin_client(settings, source.shop_domain, token)
    summary = sync_orders(
        jobs.redis(), tenant, client, search_query(since, until), dry_run=args.dry_run, on_page=progress
    )
    if tty:
        print(file=sys.stderr)
    for line in summary.would_post:
        print(
            f"would post {line['business_key']} ({line['order']}, {line['happened_at']}, "
            f"{line['spend']} {line['currency']})"
        )
    verb = "would post" if args.dry_run else "queued for posting"
    ignored = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.reasons.items()))
    total = f"{summary.seen} orders seen, {summary.paid} paid, {summary.queued} {verb}, "
    total += f"{summary.already_delivered} already delivered, {summary.ignored} ignored"
    print(total + (f" ({ignored})" if ignored else ""))
    if not args.dry_run and summary.queued:
        print("the worker posts the queued ones (connector worker)")


def add_backfill_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``connector backfill --tenant T --since DATE [--until DATE] [--dry-run]``."""
    backfill = sub.add_parser("backfill", help="post the paid Shopify orders of a period that were never delivered")
    backfill.add_argument("--tenant", required=True)
    backfill.add_argument("--since", required=True, metavar="DATE", help="orders updated at or after (ISO 8601, UTC)")
    backfill.add_argument("--until", metavar="DATE", help="orders updated at or before (ISO 8601, UTC)")
    backfill.add_argument("--dry-run", action="store_true", help="list what would be posted; change nothing")
    backfill.set_defaults(func=cmd_backfill)


# -- end of connector backfill ------------------------------------------------------------------


# -- the merchant pages (issue 14) ---------------------------------------------------------------


def _pages_settings() -> Any:
    """Settings and their Redis, for the commands of the merchant pages (a stable key is needed)."""
    settings = _load_settings()
    if not settings.tenant_store_enabled:
        print(
            "the merchant pages need a stable CONNECTOR_SECRET_KEY (it signs the links and seals the stored "
            "tenants): set it here and in the web and worker processes",
            file=sys.stderr,
        )
        sys.exit(1)
    return settings


def _tenant_directory(settings: Any) -> Any:
    from connector.directory import TenantDirectory
    from connector.queue import connect

    return TenantDirectory(settings, connect(settings.redis_url))


def cmd_merchant_link(args: argparse.Namespace) -> None:
    """Print a time-limited sign-in link to a tenant's merchant pages."""
    from connector.merchant_links import make_link_token, parse_duration

    settings = _pages_settings()
    try:
        valid = parse_duration(args.valid)
        token = make_link_token(settings.secret_key.get_secret_value(), args.tenant, valid)
    except ValueError as exc:
        print(f"--valid: {exc}", file=sys.stderr)
        sys.exit(2)
    directory = _tenant_directory(settings)
    if directory.get(args.tenant) is None and directory.stored(args.tenant) is None:
        known = ", ".join(sorted(directory.all())) or "none"
        print(f"no tenant {args.tenant!r} (tenants: {known}; add one with `connector tenants add`)", file=sys.stderr)
        sys.exit(1)
    origin = settings.public_url or web_url()
    hours = valid / 3600
    print(f"{origin}/app/sign-in?token={token}")
    print(f"valid for {hours:g} hours, once; send it to the merchant of {args.tenant}", file=sys.stderr)


def cmd_tenants(args: argparse.Namespace) -> None:
    """List the tenants, or add one to the store."""
    from connector.settings import TENANT_NAME, Tenant

    settings = _pages_settings()
    directory = _tenant_directory(settings)
    if args.action == "list":
        served = directory.all()
        for name in sorted(set(served) | set(directory.tenant_store.names())):
            origin = "file" if directory.is_file_tenant(name) else "store"
            tenant = served.get(name)
            platform = tenant.loyalty.platform if tenant else "NOT VALID: " + "; ".join(directory.problems(name))
            print(f"{name}\t{origin}\t{platform}\t{','.join(sorted(tenant.sources)) if tenant else ''}")
        return
    name = args.name.strip().lower()
    if not TENANT_NAME.match(name):
        print("a tenant name is lower-case letters, digits, '-' and '_' (up to 63)", file=sys.stderr)
        sys.exit(2)
    from connector.tenant_store import RESERVED_NAMES

    if name in RESERVED_NAMES:
        print(f"{name!r} is reserved for the merchant pages' own paths: choose another name", file=sys.stderr)
        sys.exit(2)
    if directory.name_taken(name):
        print(f"there is already a tenant {name!r}", file=sys.stderr)
        sys.exit(1)
    from connector.platforms.base import UnconfiguredPlatform

    try:
        Tenant(name=name, timezone=args.timezone, loyalty=UnconfiguredPlatform())
    except ValueError:
        print(f"--timezone: unknown timezone {args.timezone!r} (an IANA name, e.g. Europe/London)", file=sys.stderr)
        sys.exit(2)
    directory.tenant_store.create(name, {"timezone": args.timezone})
    print(f"tenant {name} created; its sign-in link: connector merchant-link --tenant {name}")


def add_merchant_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``merchant-link`` and ``tenants``."""
    link = sub.add_parser("merchant-link", help="print a time-limited sign-in link to a tenant's merchant pages")
    link.add_argument("--tenant", required=True)
    link.add_argument("--valid", default="24h", help="how long the link works: 30m, 12h, 2d (default 24h, at most 7d)")
    link.set_defaults(func=cmd_merchant_link)
    tenants = sub.add_parser("tenants", help="list the tenants, or add one to the store (onboarding)")
    actions = tenants.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every tenant: name, origin (file/store), loyalty platform, sources")
    add = actions.add_parser("add", help="create a tenant in the store; the merchant configures it in the pages")
    add.add_argument("name")
    add.add_argument("--timezone", default="UTC", help="IANA timezone (default UTC)")
    tenants.set_defaults(func=cmd_tenants)


# -- issue 15 trace: `connector trace <id>` --
def cmd_trace(args: argparse.Namespace) -> None:
    """Print the chain of one webhook, found by any id (exit 1 when nothing matches)."""
    from connector import trace
    from connector.queue import connect

    settings = _load_settings()
    redis = connect(settings.redis_url)
    found = trace.find(redis, args.id, tenant=args.tenant)
    if not found:
        narrowed = f" of tenant {args.tenant}" if args.tenant else ""
        print(f"no trace found for {args.id!r}{narrowed}; accepted: {trace.ACCEPTED_IDS}", file=sys.stderr)
        sys.exit(1)
    document = trace.chain(redis, found[0])
    if document is None:  # expired between the lookup and now
        print(f"no trace found for {args.id!r} (it just expired)", file=sys.stderr)
        sys.exit(1)
    if args.json:
        print(json.dumps({**document, "matches": found}, indent=2))
        return
    if len(found) > 1:
        print(f"{len(found)} traces match {args.id!r} (most recent first; showing the first):")
        for other in found:
            print(f"  {other}")
        print()
    print(trace.render(document))


def add_trace_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``trace``."""
    parser = sub.add_parser(
        "trace", help="show the chain of one webhook: received, translated, every delivery attempt, final state"
    )
    parser.add_argument(
        "id", help="a trace id, job id, sender's delivery id, order or reservation id, or email (hashed first)"
    )
    parser.add_argument("--tenant", default=None, help="only this tenant's traces")
    parser.add_argument("--json", action="store_true", help="print the chain as one JSON document")
    parser.set_defaults(func=cmd_trace)


# -- end issue 15 trace --
# -- issue 15 replay: connector failures / connector replay --

REPLAY_CONFIRM_ABOVE = 20
"""``connector replay`` asks before requeueing more jobs than this (``--yes`` skips the question)."""
REPLAY_PROGRESS_ABOVE = 5


def _failure_filters(args: argparse.Namespace, command: str) -> Any:
    from connector.replay import Filters, parse_since

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError:
        sys.exit(f"connector {command}: --since {args.since!r} is not a duration (2h, 3d) or an ISO 8601 date/time")
    return Filters(
        tenant=args.tenant, source=args.source, queue=args.queue, since=since, status=args.status, reason=args.reason
    )


def _failed_jobs(args: argparse.Namespace, command: str) -> tuple[Any, list[Any]]:
    """The Redis client and the failed jobs the filters select."""
    from connector import jobs
    from connector.replay import find_failed

    filters = _failure_filters(args, command)
    _load_settings()
    client = jobs.redis()
    return client, find_failed(client, filters)


def _job_line(failed: Any) -> str:
    when = failed.failed_at.isoformat(timespec="seconds") if failed.failed_at else "?"
    trace = f"  trace {failed.trace}" if failed.trace else ""
    return f"    {failed.id}  {failed.tenant or '?'}/{failed.source or '?'}  {when}{trace}"


def cmd_failures(args: argparse.Namespace) -> None:
    """List the failed jobs the filters select, grouped by reason with counts."""
    from connector.replay import group

    _, found = _failed_jobs(args, "failures")
    groups = group(found)
    if args.json:
        print(
            json.dumps(
                {
                    "total": len(found),
                    "groups": [
                        {"reason": key, "count": len(items), "jobs": [item.as_dict() for item in items]}
                        for key, items in groups
                    ],
                },
                indent=2,
            )
        )
        return
    if not found:
        print("no failed jobs match")
        return
    noun = "job" if len(found) == 1 else "jobs"
    print(f"{len(found)} failed {noun} in {len(groups)} group{'s' if len(groups) != 1 else ''}")
    for key, items in groups:
        print(f"\n{len(items)} x {key}")
        for item in items:
            print(_job_line(item))


def _replay_progress(total: int) -> Any:
    """Progress on stderr: one line rewritten on a terminal, else a counter line per tenth."""
    tty = sys.stderr.isatty()
    step = max(1, total // 10)

    def show(done: int, of: int) -> None:
        if of <= REPLAY_PROGRESS_ABOVE:
            return
        width = 30
        bar = "#" * (width * done // of) + "." * (width - width * done // of)
        line = f"replay: [{bar}] {done}/{of}"
        if tty:
            print("\r" + line, end="\n" if done == of else "", file=sys.stderr, flush=True)
        elif done % step == 0 or done == of:
            print(line, file=sys.stderr, flush=True)

    return show


def cmd_replay(args: argparse.Namespace) -> None:
    """Requeue the failed jobs the filters select (--dry-run: list them, change nothing)."""
    from connector import jobs
    from connector.replay import replay, wait_for

    client, found = _failed_jobs(args, "replay")
    if not found:
        print("no failed jobs match")
        return
    if args.dry_run:
        if args.json:
            print(json.dumps({"would_requeue": [item.as_dict() for item in found]}, indent=2))
            return
        for item in found:
            print(f"would requeue {item.id}  {item.tenant or '?'}/{item.source or '?'}  {item.reason}")
        print(f"{len(found)} failed job{'s' if len(found) != 1 else ''} would be requeued (dry run: nothing changed)")
        return
    if len(found) > REPLAY_CONFIRM_ABOVE and not args.yes:
        if not sys.stdin.isatty():
            sys.exit(f"connector replay: {len(found)} jobs match; pass --yes to requeue them (--dry-run lists them)")
        answer = input(f"requeue {len(found)} failed jobs? [y/N] ").strip().lower()
        if answer not in {"y", "yes"}:
            sys.exit("connector replay: nothing requeued")
    summary = replay(
        client, found, retry_budget=len(jobs.settings().retry_schedule), on_progress=_replay_progress(len(found))
    )
    if args.wait:
        wait_for(client, summary, args.wait)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
        return
    line = f"requeued {len(summary.requeued)}, already delivered {len(summary.already_delivered)}"
    if summary.not_failed:
        line += f", no longer failed {len(summary.not_failed)}"
    if summary.still_failing is not None:
        line += f", still failing {len(summary.still_failing)}"
        if summary.unfinished:
            line += f", not finished after {args.wait:g}s {len(summary.unfinished)}"
    print(line)
    for job_id in summary.still_failing or []:
        print(f"still failing: {job_id} (connector failures shows why)")
    if summary.requeued and summary.still_failing is None:
        print("the worker runs the requeued jobs (connector failures --since 10m shows those that fail again)")


def _add_failure_filters(parser: argparse.ArgumentParser) -> None:
    from connector.replay import REPLAYED_QUEUES

    parser.add_argument("--tenant")
    parser.add_argument("--source", help="the webhook source (shopify, mews, ...)")
    parser.add_argument("--queue", choices=REPLAYED_QUEUES)
    parser.add_argument("--since", metavar="WHEN", help="failed since: 30m, 2h, 3d, or an ISO 8601 date/time (UTC)")
    parser.add_argument("--status", type=int, metavar="HTTP", help="the failing HTTP status (e.g. 422)")
    parser.add_argument("--reason", metavar="TEXT", help="reasons containing TEXT (case-insensitive)")
    parser.add_argument("--json", action="store_true", help="JSON for machines")


def add_replay_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``connector failures [filters]`` and ``connector replay [filters] [--dry-run] [--yes] [--wait S]``."""
    failures = sub.add_parser("failures", help="list failed jobs with their reason, grouped by reason with counts")
    _add_failure_filters(failures)
    failures.set_defaults(func=cmd_failures)
    replay = sub.add_parser("replay", help="requeue failed jobs (never doubles a delivery: the ledger)")
    _add_failure_filters(replay)
    replay.add_argument("--dry-run", action="store_true", help="list exactly what would be requeued; change nothing")
    replay.add_argument("--yes", action="store_true", help=f"no question when more than {REPLAY_CONFIRM_ABOVE} match")
    replay.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="then wait for the requeued jobs, count the failing"
    )
    replay.set_defaults(func=cmd_replay)


# -- end issue 15 replay --


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
        choices=WORKER_CLASS_CHOICES,
        default=os.environ.get("CONNECTOR_WORKER_CLASS", "simple"),
        help="simple: jobs in the worker process, several processes under one that replaces any "
        "that dies (the default: several times faster); fork: a work horse per job (RQ's default). "
        "A job that keeps killing its process fails with the reason. Default: $CONNECTOR_WORKER_CLASS or simple",
    )
    worker.add_argument(
        "--processes",
        type=_processes,
        metavar="N",
        help="worker processes under this one (default: $CONNECTOR_WORKER_PROCESSES, else the CPU "
        "count; with --burst 1)",
    )
    worker.set_defaults(func=cmd_worker)

    sandbox = sub.add_parser("sandbox", help="serve the local vendor sandboxes")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8100)
    sandbox.set_defaults(func=cmd_sandbox)

    run = sub.add_parser("run", help="start Redis, sandbox, web and worker (make run)")
    run.add_argument("--sandbox-port", type=int, default=DEFAULT_SANDBOX_PORT)
    run.add_argument("--redis-port", type=int, default=6390)
    run.set_defaults(func=cmd_run)

    send = sub.add_parser("send-sample", help="send a signed sample Shopify orders/paid webhook")
    send.add_argument("--tenant", default="demo")
    send.add_argument(
        "--url", default=None, help="the web app (default: from CONNECTOR_BIND, else http://127.0.0.1:8000)"
    )
    send.add_argument("--source", choices=["shopify", "voucherify"], default="shopify")
    send.set_defaults(func=cmd_send_sample)

    check = sub.add_parser("check-config", help="validate the environment and the tenants file")
    check.add_argument(
        "--no-redis", action="store_true", help="do not connect to REDIS_URL (only check that it is well-formed)"
    )
    check.set_defaults(func=cmd_check_config)

    add_backfill_parser(sub)
    add_merchant_parsers(sub)
    # -- issue 15 trace --
    add_trace_parser(sub)
    # -- end issue 15 trace --
    add_replay_parsers(sub)  # -- issue 15 replay --

    args = parser.parse_args(argv)
    if getattr(args, "url", "") is None:
        args.url = web_url()
    # -- issue 15 logs: the one log format (a command's own output stays print; its log lines
    # at WARNING and above unless CONNECTOR_LOG_LEVEL says otherwise) --
    from connector import logs

    if args.command in ("worker", "sandbox"):
        logs.configure_logging(args.command)
    else:
        logs.configure_logging("cli", level=os.environ.get("CONNECTOR_LOG_LEVEL", "WARNING"))
    # -- end issue 15 logs --
    args.func(args)


if __name__ == "__main__":
    main()
