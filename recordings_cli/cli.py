"""`recordings`: the commands, their arguments and what they print (the HTTP is in ``client``).

    scripts/recordings [--api-url URL] [--function-key KEY] [--auth key|entra] [--scope S]
                       [--stack-outputs FILE] [--timeout S] COMMAND ...
    .venv/bin/python -m scripts.recordings COMMAND ... [--api-url URL] ...

The global options may stand before or after the command, as people type them.

The API URL and function key default to RECORDINGS_API_URL and RECORDINGS_FUNCTION_KEY; `make up`
prints both for the local stack, `pulumi stack output API_BASE_URL` gives the deployed URL. The
key is sent as `x-functions-key` and never printed.

`--auth entra` (RECORDINGS_AUTH=entra) signs in with azure-identity and sends `Authorization:
Bearer <token>` for `--scope` (RECORDINGS_API_SCOPE, or the API_AUDIENCE of `--stack-outputs` +
`/.default`); a function key, when one is given too, is still sent (apiAuth both). The token is
never printed. `--stack-outputs FILE` reads `pulumi stack output --json`: API_BASE_URL and
API_AUDIENCE fill what the options and variables leave unset.

Exit codes: 0 done; 1 the API refused (its problem detail is shown) or a download did not
verify; 2 usage error; 3 the API could not be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO
from urllib.parse import quote

from recordings_cli.client import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    CliError,
    RecordingsClient,
    api_url_problem,
    archived_file_names,
    download_file,
    file_name,
)
from recordings_cli.rules import start_problems
from recordings_cli.signin import BearerAuth, EntraTokens, scope_of_audience, scope_problem

#: Widest id the ``list`` table shows (an ACS recording id is about 180 characters).
ID_WIDTH = 32
#: ``--auth``: the function key only, or an Entra ID token (plus the key when one is given).
AUTH_CHOICES = ("key", "entra")

# --- output ------------------------------------------------------------------------------------


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO = sys.stdout
) -> None:
    """Columns padded to their widest cell; ``None`` shows as ``-``."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(r[i])) for r in (list(headers), *cells)) for i in range(len(headers))]
    for row in (list(headers), ["-" * w for w in widths], *cells):
        print(
            "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out
        )


def print_fields(pairs: Sequence[tuple[str, Any]], out: TextIO = sys.stdout) -> None:
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        print(f"{name.ljust(width)}  {_cell(value)}", file=out)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


# --- commands ----------------------------------------------------------------------------------


def cmd_start(client: RecordingsClient, args: argparse.Namespace) -> int:
    if (args.server_call_id is None) == (args.call_connection_id is None):
        raise CliError("give exactly one of SERVER_CALL_ID and --call-connection-id", EXIT_USAGE)
    body: dict[str, Any] = {
        "serverCallId": args.server_call_id,
        "callConnectionId": args.call_connection_id,
        "content": args.content,
        "channel": args.channel,
        "format": args.format,
        "audioChannelParticipantOrdering": args.order or None,
        "channelAffinity": [_affinity(item) for item in args.affinity] or None,
        "recordingStateCallbackUrl": args.callback_url,
    }
    body = {key: value for key, value in body.items() if value is not None}
    if args.pause_on_start:
        body["pauseOnStart"] = True
    problems = start_problems(body)
    if problems:
        raise CliError("; ".join(problems), EXIT_USAGE)
    answer, replayed = client.start(body, args.idempotency_key)
    if args.quiet:
        print(answer["recordingId"])
    elif args.json:
        print_json(answer)
    else:
        if replayed:
            print(
                "already started with this --idempotency-key (the API replayed its first "
                f"answer; nothing new was started): {answer['recordingId']}"
            )
        else:
            print(f"recording started: {answer['recordingId']}")
        print_fields([("state", answer.get("state")), ("kind", answer.get("recordingKind"))])
    return EXIT_OK


def _affinity(item: str) -> dict[str, Any]:
    participant, separator, channel = item.rpartition("=")
    if not separator or not participant or not channel.isdigit():
        raise CliError(f"--affinity {item!r}: expected PARTICIPANT=CHANNEL, e.g. 8:acs:...=0", 2)
    return {"participant": participant, "channel": int(channel)}


def cmd_transition(client: RecordingsClient, args: argparse.Namespace) -> int:
    answer = client.transition(args.recording_id, args.command)
    if args.json:
        print_json(answer)
    else:
        print(f"{answer['recordingId']}: {answer['state']}")
    return EXIT_OK


def cmd_status(client: RecordingsClient, args: argparse.Namespace) -> int:
    view = client.get(args.recording_id)
    if args.json:
        print_json(view)
        return EXIT_OK
    registry = view.get("registry") or {}
    live = view.get("live")
    print_fields(
        [
            ("recording", view.get("recordingId")),
            ("live (ACS)", live["state"] if live else "not at ACS (stopped or call ended)"),
            ("state (registry)", registry.get("state")),
            ("server call", registry.get("serverCallId")),
            ("call connection", registry.get("callConnectionId")),
            ("created", registry.get("createdAt")),
            ("updated", registry.get("updatedAt")),
            ("failure", registry.get("failure")),
        ]
    )
    options = registry.get("options")
    if options:
        print("\noptions")
        print_table(["option", "value"], [(name, value) for name, value in options.items()])
    history = registry.get("stateHistory") or []
    if history:
        print("\nstate history")
        print_table(
            ["state", "at", "source"],
            [(h.get("state"), h.get("at"), h.get("source")) for h in history],
        )
    archive = registry.get("archive")
    print("\narchive")
    if not archive:
        print("not archived yet")
    else:
        print_fields(
            [
                ("status", archive.get("status")),
                ("chunks", archive.get("chunkCount")),
                ("bytes", archive.get("totalBytes")),
                ("archived at", archive.get("archivedAt")),
                ("folder", archive.get("blobPrefix")),
                ("error", archive.get("error")),
            ]
        )
    return EXIT_OK


def cmd_list(client: RecordingsClient, args: argparse.Namespace) -> int:
    params = {
        "serverCallId": args.server_call_id,
        "state": args.state,
        "archiveStatus": args.archive_status,
        "limit": args.limit,
        "continuationToken": args.continuation_token,
    }
    items: list[dict[str, Any]] = []
    while True:
        page = client.list_page(params)
        items += page.get("items") or []
        token = page.get("continuationToken")
        if not (args.all and token):
            break
        params["continuationToken"] = token
    if args.all:  # everything is here, so it can be shown newest first
        items.sort(key=lambda item: item.get("createdAt") or "", reverse=True)
    if args.json:
        print_json({"items": items, "continuationToken": token})
        return EXIT_OK
    if not items:
        print("no recordings match")
    else:
        print_table(
            ["recording", "state", "recorded as", "created", "archive", "chunks", "bytes"],
            [
                (
                    shorten(item.get("recordingId")),
                    item.get("state"),
                    " ".join(v for v in (item.get("channel"), item.get("format")) if v) or None,
                    item.get("createdAt"),
                    item.get("archiveStatus"),
                    item.get("chunkCount"),
                    item.get("totalBytes"),
                )
                for item in items
            ],
        )
    if any(shorten(item.get("recordingId")) != item.get("recordingId") for item in items):
        print(f"\nids longer than {ID_WIDTH} characters are shortened (…); --json shows them whole")
    if token:
        print(f"\nmore recordings follow: add --continuation-token {token} (or --all)")
    return EXIT_OK


def shorten(value: Any, width: int = ID_WIDTH) -> Any:
    """A long id cut to ``width`` characters with an ellipsis, for tables (JSON keeps it whole)."""
    if isinstance(value, str) and len(value) > width:
        return value[: width - 1] + "…"
    return value


def cmd_manifest(client: RecordingsClient, args: argparse.Namespace) -> int:
    manifest = client.manifest(args.recording_id)
    if args.json:
        print_json(manifest)
        return EXIT_OK
    print_fields(
        [
            ("recording", manifest.get("recordingId")),
            ("call", manifest.get("callId")),
            ("started", manifest.get("recordingStartTime")),
            ("duration", _seconds(manifest.get("recordingDurationMs"))),
            (
                "recorded as",
                " ".join(
                    str(manifest.get(k) or "") for k in ("contentType", "channelType", "formatType")
                ).strip(),
            ),
            ("total bytes", manifest.get("totalBytes")),
            ("archived at", manifest.get("archivedAt")),
            ("folder", manifest.get("blobPrefix")),
        ]
    )
    print("\nchunks")
    print_table(
        ["#", "file", "bytes", "duration", "content MD5", "metadata"],
        [
            (
                chunk.get("index"),
                file_name(chunk.get("contentBlob")),
                chunk.get("contentBytes"),
                _seconds(chunk.get("chunkDurationMs")),
                chunk.get("contentMd5"),
                file_name(chunk.get("metadataBlob")),
            )
            for chunk in manifest.get("chunks") or []
        ],
    )
    participants = manifest.get("participants") or []
    if participants:
        print("\nparticipants")
        print_table(
            ["participant", "channels"],
            [
                (p.get("participantId"), ", ".join(str(c) for c in p.get("channels") or []) or None)
                for p in participants
            ],
        )
    return EXIT_OK


def _seconds(milliseconds: Any) -> str | None:
    return f"{milliseconds / 1000:.2f}s" if isinstance(milliseconds, int | float) else None


def cmd_download(client: RecordingsClient, args: argparse.Namespace) -> int:
    if args.wait:
        _wait_for_archive(client, args.recording_id, args.wait)
    manifest = client.manifest(args.recording_id)
    names = archived_file_names(manifest)
    if args.file:
        unknown = [name for name in args.file if name not in names]
        if unknown:
            raise CliError(
                f"not archived files of this recording: {', '.join(unknown)}; "
                f"its files are: {', '.join(names)}",
                EXIT_REFUSED,
            )
        names = [name for name in names if name in args.file]
    out_dir = args.out if args.out is not None else Path(quote(args.recording_id, safe=""))
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [download_file(client, args.recording_id, name, out_dir) for name in names]
    ok = all(result.verified for result in results)
    if args.json:
        print_json(
            [
                {"name": r.name, "size": r.size, "verified": r.verified, "problem": r.problem,
                 "path": str(r.path) if r.path else None}
                for r in results
            ]
        )  # fmt: skip
    else:
        print_table(
            ["file", "bytes", "verified"],
            [(r.name, r.size, "✓" if r.verified else f"✗ {r.problem}") for r in results],
        )
        verdict = "every file verified" if ok else "SOME FILES FAILED"
        print(f"\n{verdict}; saved in {out_dir}")
    return EXIT_OK if ok else EXIT_REFUSED


#: Archive statuses that will not change by waiting.
FINAL_ARCHIVE_STATUSES = frozenset({"archived", "lost", "failed", "erased"})


def _wait_for_archive(client: RecordingsClient, recording_id: str, seconds: float) -> None:
    """Poll the recording until its archive status is final (a stop is archived in seconds)."""
    deadline = time.monotonic() + seconds
    announced = False
    while True:
        archive = (client.get(recording_id).get("registry") or {}).get("archive") or {}
        status = archive.get("status")
        if status in FINAL_ARCHIVE_STATUSES:
            return
        if time.monotonic() >= deadline:
            raise CliError(
                f"the archive was not ready within {seconds:g} s (status: "
                f"{status or 'not started'}); run the command again later",
                EXIT_REFUSED,
            )
        if not announced:
            print(f"waiting up to {seconds:g} s for the archive ...", file=sys.stderr, flush=True)
            announced = True
        time.sleep(0.5)


# --- parser ------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 2 with one line (argparse's default), help on every command."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recordings",
        description="Control and fetch call recordings through the recording API.",
        epilog="Exit codes: 0 done; 1 the API or the sign-in refused, or a download did not "
        "verify; 2 usage error; 3 the API could not be reached. The global options (--api-url, "
        "--function-key, --auth, --scope, --stack-outputs, --timeout) may also follow the "
        "command.",
    )
    _add_global_options(parser, defaults=True)
    # The same options on every command, defaulting to "not given", so that one typed after
    # the command overrides the value before it (or from the environment) and nothing else does.
    global_options = argparse.ArgumentParser(add_help=False)
    _add_global_options(global_options, defaults=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary, parents=[global_options])
        sub.set_defaults(handler=handler)
        sub.add_argument("--json", action="store_true", help="print the answer as JSON")
        return sub

    start = command("start", "Start recording a call.", cmd_start)
    start.add_argument(
        "-q", "--quiet", action="store_true", help="print only the recording id (for scripts)"
    )
    start.add_argument("server_call_id", nargs="?", metavar="SERVER_CALL_ID", help="the call")
    start.add_argument("--call-connection-id", help="record by call connection id instead")
    start.add_argument("--content", choices=["audio", "audioVideo"], help="default audioVideo")
    start.add_argument("--channel", choices=["mixed", "unmixed"], help="default mixed")
    start.add_argument(
        "--format", choices=["wav", "mp3", "mp4"], help="default mp4 (audioVideo) or wav"
    )
    start.add_argument("--pause-on-start", action="store_true", help="start paused")
    start.add_argument(
        "--order",
        action="append",
        default=[],
        metavar="PARTICIPANT",
        help="unmixed: raw participant id for the next channel (repeat, in channel order)",
    )
    start.add_argument(
        "--affinity",
        action="append",
        default=[],
        metavar="PARTICIPANT=CHANNEL",
        help="unmixed: pin a participant to a channel 0-4 (repeatable)",
    )
    start.add_argument("--callback-url", help="where ACS posts state callbacks (default: the API)")
    start.add_argument(
        "--idempotency-key", help="retrying with the same key starts the recording only once"
    )
    for name, summary in (
        ("pause", "Pause an active recording."),
        ("resume", "Resume a paused recording."),
        ("stop", "Stop a recording (ACS then publishes its files for the archiver)."),
    ):
        command(name, summary, cmd_transition).add_argument("recording_id", metavar="RECORDING_ID")
    command(
        "status", "Live state, options, state history and archive status.", cmd_status
    ).add_argument("recording_id", metavar="RECORDING_ID")
    listing = command(
        "list", "List recordings (registry key order; --all shows newest first).", cmd_list
    )
    listing.add_argument("--server-call-id", help="only recordings of this call")
    listing.add_argument("--state", choices=["active", "inactive", "stopped", "failed"])
    listing.add_argument(
        "--archive-status", choices=["archiving", "archived", "lost", "failed", "overdue"]
    )
    listing.add_argument("--limit", type=_limit, default=20, help="recordings per page, 1-100 (20)")
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.add_argument("--continuation-token", help="continue where a previous page ended")
    command("manifest", "Show the archive manifest of a recording.", cmd_manifest).add_argument(
        "recording_id", metavar="RECORDING_ID"
    )
    download = command(
        "download", "Download and verify the archived files of a recording.", cmd_download
    )
    download.add_argument("recording_id", metavar="RECORDING_ID")
    download.add_argument(
        "--out", type=Path, help="directory to write to (default: ./<percent-encoded id>)"
    )
    download.add_argument(
        "--file",
        action="append",
        metavar="NAME",
        help="only this file, e.g. chunk-0000.wav (repeatable; default: every file)",
    )
    download.add_argument(
        "--wait",
        type=_seconds_above_zero,
        metavar="SECONDS",
        help="first wait up to this long for the archive (right after a stop it takes seconds)",
    )
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--api-url",
        default=default(os.environ.get("RECORDINGS_API_URL")),
        help="base URL of the API, e.g. http://127.0.0.1:7071/api (default: $RECORDINGS_API_URL)",
    )
    parser.add_argument(
        "--function-key",
        default=default(os.environ.get("RECORDINGS_FUNCTION_KEY")),
        help="function key sent as x-functions-key (default: $RECORDINGS_FUNCTION_KEY)",
    )
    parser.add_argument(
        "--auth",
        choices=AUTH_CHOICES,
        default=default(os.environ.get("RECORDINGS_AUTH") or "key"),
        help="key: the function key only; entra: sign in with azure-identity and send an Entra ID "
        "token (and the key, if one is given) (default: $RECORDINGS_AUTH or key)",
    )
    parser.add_argument(
        "--scope",
        default=default(os.environ.get("RECORDINGS_API_SCOPE")),
        help="--auth entra: the token's scope, <API audience>/.default (default: "
        "$RECORDINGS_API_SCOPE, else API_AUDIENCE of --stack-outputs)",
    )
    parser.add_argument(
        "--stack-outputs",
        type=Path,
        default=default(os.environ.get("RECORDINGS_STACK_OUTPUTS")),
        metavar="FILE",
        help="`pulumi stack output --json` saved to a file: its API_BASE_URL and API_AUDIENCE "
        "are used where no option or variable gives them (default: $RECORDINGS_STACK_OUTPUTS)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds_above_zero,
        default=default(30.0),
        help="seconds to wait for each API answer (30)",
    )


def _seconds_above_zero(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600 or seconds != seconds:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {value!r}")
    return seconds


def _limit(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if not 1 <= number <= 100:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 100, not {value!r}")
    return number


@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[RecordingsClient]:
    auth = BearerAuth(EntraTokens(args.scope).token) if args.auth == "entra" else None
    client = RecordingsClient(args.api_url, args.function_key, timeout=args.timeout, auth=auth)
    try:
        yield client
    finally:
        client.close()


def stack_outputs(path: Path) -> dict[str, str]:
    """The string outputs of ``pulumi stack output --json`` saved at ``path``.

    :raises ValueError: naming why the file cannot be used.
    """
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror or error})") from None
    except ValueError:
        raise ValueError(f"{path} is not JSON (save `pulumi stack output --json`)") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a JSON object of stack outputs")
    return {key: value for key, value in document.items() if isinstance(value, str)}


def _resolve_connection(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill the API URL and the scope from ``--stack-outputs`` where nothing else set them, and
    check both before any request (usage errors, exit 2)."""
    if args.auth not in AUTH_CHOICES:  # a default from RECORDINGS_AUTH, which argparse trusts
        parser.error(f"RECORDINGS_AUTH ({args.auth!r}) must be one of: {', '.join(AUTH_CHOICES)}")
    outputs: dict[str, str] = {}
    if args.stack_outputs is not None:
        try:
            outputs = stack_outputs(args.stack_outputs)
        except ValueError as error:
            parser.error(f"--stack-outputs: {error}")
    args.api_url = args.api_url or outputs.get("API_BASE_URL")
    if not args.api_url:
        parser.error("no API URL: pass --api-url or set RECORDINGS_API_URL (or --stack-outputs)")
    problem = api_url_problem(args.api_url)
    if problem is not None:
        parser.error(f"--api-url: {problem}")
    if args.auth != "entra":
        return
    if not args.scope and outputs.get("API_AUDIENCE"):
        args.scope = scope_of_audience(outputs["API_AUDIENCE"])
    if not args.scope:
        parser.error(
            "--auth entra needs the API's scope: pass --scope <audience>/.default, set "
            "RECORDINGS_API_SCOPE, or give --stack-outputs of a stack with apiAuth entraId or both"
        )
    problem = scope_problem(args.scope)
    if problem is not None:
        parser.error(f"--scope: {problem}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _resolve_connection(parser, args)
    try:
        with _client(args) as client:
            return int(args.handler(client, args))
    except CliError as error:
        print(f"recordings: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("recordings: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
