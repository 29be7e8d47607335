"""`stocksent models init|list|promote|rollback|history --store DIR`: the model store by hand.

Every change made here writes a history line naming the person who made it. Exit codes (the
one list of `common.failures.ExitCode`): 0 done; 2 bad input, nothing changed (no such
store or version, nothing to roll back to: the one-line message says which).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from common.failures import ExitCode
from common.options import add_options, from_arguments, options_of, parse_flags, require, shared
from common.shared_options import MODEL_STORE_OPTION
from model.store import ModelStore, StoreError, person


@dataclass(frozen=True)
class ModelsSettings:
    """Settings of `stocksent models`: the store it works on."""

    store: str = shared(MODEL_STORE_OPTION, flag="store")

    def __post_init__(self) -> None:
        require(self, "store")


def build_parser(prog: str) -> argparse.ArgumentParser:
    """Subcommands, each with `--store DIR` (default: $STOCKSENT_MODEL_STORE)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0], allow_abbrev=False
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        add_options(p, options_of(ModelsSettings))
        return p

    init = command("init", "create a store serving a copy of an exported model")
    init.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="exported model directory (default: the committed pretrained model)",
    )
    init.add_argument(
        "--exist-ok",
        action="store_true",
        help="an existing store is fine: leave it as it is and exit 0 (for start-up scripts)",
    )
    command("list", "the stored versions; * marks the one being served")
    promote = command("promote", "serve VERSION from now on (classifiers follow within a poll)")
    promote.add_argument("version", help="a stored version (see `list`)")
    promote.add_argument("--reason", default="promoted by hand", help="kept in the history")
    rollback = command("rollback", "serve the version that served before the current one")
    rollback.add_argument("--reason", default="rolled back by hand", help="kept in the history")
    history = command("history", "every decision, oldest first")
    history.add_argument("--json", action="store_true", help="one JSON object a line")
    return parser


def main(argv: list[str], prog: str = "stocksent models") -> int:
    """Entry point; see the module docstring for exit codes."""
    args = parse_flags(build_parser(prog), argv)
    settings = from_arguments(ModelsSettings, args)  # stocksent.cli: one line, exit 2
    try:
        return _run(args, Path(settings.store))
    except StoreError as err:
        print(f"{prog} {args.action}: error: {err}", file=sys.stderr)
        return int(ExitCode.BAD_INPUT)
    except BrokenPipeError:  # `stocksent models list | head`
        sys.stderr.close()
        return 0


def _run(args: argparse.Namespace, root: Path) -> int:
    store = ModelStore(root)
    if args.action == "init":
        if args.exist_ok and store.exists():
            print(f"{store.root}: already a model store, serving {store.current()}")
            return 0
        store = ModelStore.init(root, args.source)
        print(f"{store.root}: serving {store.current()}")
    elif args.action == "list":
        store.require()
        print(f"{'':2}{'version':<18} {'created':<25} {'test acc':>8}  origin")
        for row in store.summaries():
            accuracy = f"{row.test_accuracy:.4f}" if row.test_accuracy is not None else "-"
            mark = "*" if row.serving else " "
            print(f"{mark} {row.version:<18} {row.created_at:<25} {accuracy:>8}  {row.origin}")
    elif args.action == "promote":
        entry = store.promote(args.version, by=person(), reason=args.reason)
        print(f"{store.root}: serving {entry['current']} (was {entry['parent']})")
    elif args.action == "rollback":
        entry = store.rollback(by=person(), reason=args.reason)
        print(f"{store.root}: serving {entry['current']} (was {entry['parent']})")
    elif args.action == "history":
        store.require()
        for entry in store.history():
            if args.json:
                print(json.dumps(entry))
            else:
                print(
                    f"{entry.get('at', '?')}  {entry.get('action', '?'):<8} "
                    f"{entry.get('candidate', '?')}  serving {entry.get('current', '?')}  "
                    f"by {entry.get('by', '?')}: {entry.get('reason', '')}"
                )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
