"""Command line: the window by default, headless commands beside it.

    clipiqa-desktop [options] [FOLDER]   the desktop app (same model/catalog options as below)
    clipiqa-desktop index FOLDER         score, embed and thumbnail a folder into the catalog
    clipiqa-desktop list FOLDER          the folder's photos, sorted and filtered by score
    clipiqa-desktop rate PATH...         reject / pick / stars / colour label
    clipiqa-desktop export FOLDER        scores and decisions as CSV
    clipiqa-desktop score PATH...        CLIP-IQA scores of photos, without a catalog

Exit status: 0 success; 1 some photos failed (each reported); 2 the command could not run at all
(bad arguments, missing weights, unknown model or device).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL = 0, 1, 2


def size_arg(text: str) -> int | str | None:
    """`--size`: a long-side pixel count, 'full' (no downscale), or 'auto'."""
    text = text.strip().lower()
    if text in ("full", "auto"):
        return None if text == "full" else "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel count, 'full' or 'auto'") from None
    if not 32 <= value <= 16384:
        raise argparse.ArgumentTypeError("the analysis size must be between 32 and 16384 pixels")
    return value


def model_options() -> argparse.ArgumentParser:
    """Options every command shares: which model, which weights, where it runs, at what size."""
    from .scoring.constants import (
        DEFAULT_MODEL,
        DEFAULT_PRETRAINED,
        DEVICE_CHOICES,
        PRECISION_CHOICES,
        WEIGHTS_ENV,
    )

    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model")
    g.add_argument(
        "--catalog", metavar="FILE", help="catalog file (default: catalog.sqlite in your user data folder)"
    )
    # --model/--pretrained default to None so that `list`/`export` can tell "not given" (= show the
    # scores the folder was last indexed with) from a choice; ModelSpec.from_options applies defaults.
    g.add_argument(
        "--model",
        default=None,
        help=f"open_clip architecture, or an open_clip config .json (default: {DEFAULT_MODEL})",
    )
    g.add_argument(
        "--pretrained",
        default=None,
        help=f"open_clip pretrained tag (default: {DEFAULT_PRETRAINED}); 'none' = random weights",
    )
    g.add_argument(
        "--weights", metavar="FILE", help=f"local checkpoint (OpenAI .pt or open_clip); also ${WEIGHTS_ENV}"
    )
    g.add_argument(
        "--device",
        default="auto",
        choices=DEVICE_CHOICES,
        help="auto = CUDA, then Apple MPS, then CPU (default: %(default)s)",
    )
    g.add_argument(
        "--precision",
        default="auto",
        choices=PRECISION_CHOICES,
        help="image encoder precision; auto = fp16 on GPU, bf16 on CPUs with native bf16, else fp32",
    )
    g.add_argument(
        "--size",
        type=size_arg,
        default="auto",
        metavar="N|full|auto",
        help="analysis size: long side in pixels, 'full', or auto = 1024 on GPU, 512 on CPU",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    from .commands import export, index, listing, rate, score

    common = model_options()
    parser = argparse.ArgumentParser(
        prog="clipiqa-desktop",
        description="Cull photo shoots with CLIP-IQA quality scores. Without a command, opens the window.",
        epilog=(
            "the window: clipiqa-desktop [--catalog FILE] [--model M] [--pretrained T] [--weights FILE] "
            "[--device D] [--size N|full|auto] [FOLDER]\n"
            "each command's options: clipiqa-desktop COMMAND --help"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens, for bug reports")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (index, listing, rate, export, score):
        command.add_parser(sub, common)
    return parser


COMMANDS = ("index", "list", "rate", "export", "score")


def _wants_command(argv: list[str]) -> bool:
    """A headless command was named (or help was asked for); otherwise the window opens."""
    return any(a in COMMANDS for a in argv) or any(a in ("-h", "--help", "--version") for a in argv)


def build_gui_parser() -> argparse.ArgumentParser:
    """`clipiqa-desktop [options] [FOLDER]`: the window, with the same model/catalog options."""
    parser = argparse.ArgumentParser(prog="clipiqa-desktop", parents=[model_options()])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens, for bug reports")
    parser.add_argument("folder", nargs="?", metavar="FOLDER", help="a shoot to open (and index)")
    parser.set_defaults(command=None)
    return parser


def _configure_logging(verbose: bool) -> None:
    """Messages on stderr prefixed with the program name. open_clip logs its own download and
    random-init chatter to the root logger; the user sees our explanation instead unless -v."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("clipiqa-desktop: %(message)s"))
    if not verbose:
        handler.addFilter(lambda record: "open_clip" not in record.pathname)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser() if _wants_command(argv) else build_gui_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        from .app import run_app

        return run_app(args)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("clipiqa-desktop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `| head`: not an error worth a traceback
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
