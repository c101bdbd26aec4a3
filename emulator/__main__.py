"""``python -m emulator``: run the ACS Call Recording emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
from pathlib import Path

from aiohttp import web

from emulator.app import build_app
from emulator.auth import decode_access_key
from emulator.config import ConfigError, EmulatorConfig
from emulator.constants import (
    DEFAULT_IMMUTABLE_RESOURCE_ID,
    DEFAULT_REGION_HOST,
    DEFAULT_RESOURCE_ID,
)
from emulator.events import DEFAULT_DEAD_LETTER_CONTAINER
from emulator.service import EmulatorService

LOG = logging.getLogger("emulator")
ACCESS_KEY_ENV = "ACS_EMULATOR_ACCESS_KEY"
TOPIC_KEY_ENV = "EVENTGRID_EMULATOR_TOPIC_KEY"


def duration(text: str) -> float:
    """Seconds from '90', '90s', '15m', '4h' or '1d'."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (use 90, 90s, 15m, 4h)"
        ) from exc


def faults_argument(text: str) -> list[dict]:
    """A JSON list of fault rules, inline or from ``@path``."""
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        rules = json.loads(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--faults is not JSON: {exc}") from exc
    if not isinstance(rules, list):
        raise argparse.ArgumentTypeError("--faults must be a JSON list of rules")
    return rules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description="Local Azure Communication Services Call Recording emulator.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    add("--port", type=int, default=0, help="TCP port (default: a free port, printed at start)")
    add(
        "--access-key",
        default=os.environ.get(ACCESS_KEY_ENV),
        required=ACCESS_KEY_ENV not in os.environ,
        help=f"base64 access key clients sign requests with (HMAC); or set {ACCESS_KEY_ENV}"
        " to keep it out of the process list",
    )
    add("--data-dir", required=True, type=Path, help="directory for rendered media and metadata")
    add(
        "--clock",
        choices=("wall", "manual"),
        default="wall",
        help="wall: real time; manual: time moves only via POST /emulator/clock:advance",
    )
    add(
        "--max-chunk-duration",
        type=duration,
        default=4 * 3600.0,
        metavar="DURATION",
        help="split recordings into chunks of at most this much content (default 4h)",
    )
    add(
        "--retention",
        type=duration,
        default=24 * 3600.0,
        metavar="DURATION",
        help="media is deleted this long after it is ready (default 24h)",
    )
    add("--event-queue-connection-string", help="Storage connection string of the event queue")
    add("--event-queue-name", help="queue that receives RecordingFileStatusUpdated events")
    add(
        "--event-queue-encoding",
        choices=("base64", "json"),
        default="base64",
        help="queue message body: base64 of the event JSON (Event Grid today) or plain JSON",
    )
    add("--event-webhook", metavar="URL", help="Event Grid webhook endpoint (handshake first)")
    add(
        "--event-delay",
        type=duration,
        default=0.0,
        metavar="DURATION",
        help="wait this long after rendering before delivering the event (default 0)",
    )
    add(
        "--dead-letter-container",
        default=DEFAULT_DEAD_LETTER_CONTAINER,
        help="container in the event queue's storage account that receives events a "
        f"'deadletter' fault rule dead-letters (default {DEFAULT_DEAD_LETTER_CONTAINER})",
    )
    add(
        "--region-host",
        default=DEFAULT_REGION_HOST,
        help=f"media host written into event URLs (default {DEFAULT_REGION_HOST})",
    )
    add(
        "--resource-id",
        default=DEFAULT_RESOURCE_ID,
        help="ARM id of the emulated ACS resource (event topic)",
    )
    add(
        "--immutable-resource-id",
        default=DEFAULT_IMMUTABLE_RESOURCE_ID,
        help="immutable ACS resource id (metadata resourceId, callback JWT audience)",
    )
    add(
        "--recording-id-suffix",
        default="",
        help="appended to every recording id, e.g. '+/=' to exercise URL encoding",
    )
    add(
        "--topic-key",
        default=os.environ.get(TOPIC_KEY_ENV),
        help="serve an Event Grid custom topic at /api/events that accepts this access key "
        f"(aeg-sas-key); or set {TOPIC_KEY_ENV}; without it no topic is served",
    )
    add("--fault-seed", type=int, default=0, help="seed of the fault injector's draws")
    add(
        "--faults",
        type=faults_argument,
        default=[],
        metavar="JSON|@FILE",
        help='fault rules, e.g. \'[{"operation":"download_recording","kind":"drop",'
        '"afterBytes":1000,"times":1}]\'',
    )
    add("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        access_key=args.access_key,
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        clock=args.clock,
        max_chunk_seconds=args.max_chunk_duration,
        retention_seconds=args.retention,
        event_queue_connection_string=args.event_queue_connection_string,
        event_queue_name=args.event_queue_name,
        event_queue_encoding=args.event_queue_encoding,
        event_webhook=args.event_webhook,
        event_delay_seconds=args.event_delay,
        dead_letter_container=args.dead_letter_container,
        region_host=args.region_host,
        resource_id=args.resource_id,
        immutable_resource_id=args.immutable_resource_id,
        recording_id_suffix=args.recording_id_suffix,
        fault_seed=args.fault_seed,
        faults=args.faults,
        topic_key=args.topic_key,
    ).validate()


async def serve(config: EmulatorConfig) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    port = sock.getsockname()[1]
    base_url = f"http://{config.host}:{port}"
    config.data_dir.mkdir(parents=True, exist_ok=True)
    service = EmulatorService(config, base_url)
    # Open keep-alive connections must not hold a stop for aiohttp's default 60 s.
    runner = web.AppRunner(
        build_app(service), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    LOG.info("ACS Call Recording emulator listening on %s (clock %s)", base_url, config.clock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    LOG.info("stopping")
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        config = config_from(args)
        decode_access_key(config.access_key)
    except (ConfigError, ValueError) as exc:
        LOG.error("invalid configuration: %s", exc)
        return 2
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
