"""The ``digitrec`` command: it only parses arguments and calls the package."""

from __future__ import annotations

import argparse
import sys

from digitrec_utils.exceptions import DigitrecError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten-digit recognition reports.")
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser("data", help="Load a dataset and print its summary.")
    describe.add_argument("name", nargs="?", default="mnist-sample", help="Dataset name (default mnist-sample).")
    describe.add_argument("--data-dir", default=None, help="Folder to search first for dataset files.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``digitrec`` command line; return the exit status."""
    arguments = _build_parser().parse_args(argv)
    try:
        if arguments.command == "data":
            from digitrec_utils.data import load_dataset

            print(load_dataset(arguments.name, data_dir=arguments.data_dir))
    except DigitrecError as error:
        print(f"digitrec: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
