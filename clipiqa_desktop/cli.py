"""Command line: the window by default, headless commands beside it.

    clipiqa-desktop [options] [FOLDER]   the desktop app (same model/catalog options as below)
    clipiqa-desktop index FOLDER         score, embed and thumbnail a folder into the catalog
    clipiqa-desktop list FOLDER          the folder's photos, sorted and filtered by score
    clipiqa-desktop rate PATH...         reject / pick / stars / colour label
    clipiqa-desktop export FOLDER        scores and decisions as CSV
    clipiqa-desktop move-rejects FOLDER  move rejected photos aside (never deleted); --undo
    clipiqa-desktop evaluate FOLDER      how well the flags match a shoot you already culled
    clipiqa-desktop search FOLDER TEXT   photos ranked by how well they match a text ("bride laughing")
    clipiqa-desktop groups FOLDER        bursts, brackets and scenes, the best of each; --keep-best N
    clipiqa-desktop learn FOLDER         learn your taste from your keeps/rejects; rank the undecided
    clipiqa-desktop score PATH...        CLIP-IQA scores of photos, without a catalog
    clipiqa-desktop roots                where each machine sees a shared folder root (add, remove)

Exit status: 0 success; 1 some photos failed (each reported); 2 the command could not run at all
(bad arguments, missing weights, unknown model or device).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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


def weights_arg(text: str) -> str:
    """`--weights`: an existing file. Checked while reading the arguments, so that a typo is reported
    at once instead of after the seconds it takes to import torch and open_clip."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give the weights file itself (.pt, .bin, …)")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"weights file {text} does not exist")
    return text


def model_arg(text: str) -> str:
    """`--model`: an open_clip name (checked when the model loads) or a config .json (checked here)."""
    if text.endswith(".json") and not Path(text).expanduser().is_file():
        raise argparse.ArgumentTypeError(f"model config {text} does not exist")
    return text


def verbose_options() -> argparse.ArgumentParser:
    """`-v` after the command name too (`clipiqa-desktop index -v FOLDER`), not only before it."""
    p = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: without -v here, the value given before the command name stands
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log what happens, for bug reports",
    )
    return p


def catalog_options() -> argparse.ArgumentParser:
    """`--catalog`, for the commands that read or write the catalog (and the window)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("catalog")
    g.add_argument(
        "--catalog",
        metavar="FILE|URL",
        help="catalog file (default: catalog.sqlite in your user data folder), or a studio's shared "
        "PostgreSQL catalog: postgresql://USER@HOST[:PORT]/DATABASE (the [studio] extra)",
    )
    return p


def model_options(use: str = "score") -> argparse.ArgumentParser:
    """The model options, as a parent parser for the commands that use them.

    use="score": the model scores images (index, score, the window): every option.
    use="choose": list/export show stored scores; the options choose whose scores (default: those
    the folder was last indexed with), and the model is loaded only to encode the texts of a new
    --prompt. --precision applies to the image tower only, so it is not offered there; it is still
    accepted (and has no effect), so that one set of model options can be passed to every command.
    """
    from .scoring.constants import (
        DEFAULT_MODEL,
        DEFAULT_PRETRAINED,
        DEVICE_CHOICES,
        ENGINE_CHOICES,
        PRECISION_CHOICES,
        WEIGHTS_ENV,
    )

    choose = use == "choose"
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("which scores" if choose else "model")
    if choose:
        g.description = (  # list/export format their help raw: the line break is kept
            "Default: the scores the folder was last indexed with.\n"
            "The model is loaded only to encode the texts of a new --prompt."
        )
    # --model/--pretrained default to None so that `list`/`export` can tell "not given" (= show the
    # scores the folder was last indexed with) from a choice; ModelSpec.from_options applies defaults.
    g.add_argument(
        "--model",
        type=model_arg,
        default=None,
        help=(
            "the scores of this open_clip architecture or config .json"
            if choose
            else f"open_clip architecture, or an open_clip config .json (default: {DEFAULT_MODEL}); "
            "'none' = no CLIP: only the pixel measures (focus, exposure, faces), no weights needed"
        ),
    )
    g.add_argument(
        "--pretrained",
        default=None,
        help=(
            "the scores of this open_clip pretrained tag"
            if choose
            else f"open_clip pretrained tag (default: {DEFAULT_PRETRAINED}); 'none' = random weights"
        ),
    )
    g.add_argument(
        "--weights",
        type=weights_arg,
        metavar="FILE",
        help=(
            "the scores made with this weights file (needed to encode a new --prompt for them)"
            if choose
            else f"local checkpoint (OpenAI .pt or open_clip); also ${WEIGHTS_ENV}"
        ),
    )
    g.add_argument(
        "--size",
        type=size_arg,
        default="auto",
        metavar="N|full" if choose else "N|full|auto",
        help=(
            "the scores made at this analysis size"
            if choose
            else "analysis size: long side in pixels, 'full', or auto = 1024 on GPU, 512 on CPU"
        ),
    )
    g.add_argument(
        "--device",
        default="auto",
        choices=DEVICE_CHOICES,
        help=(
            "where a new --prompt's texts are encoded (default: %(default)s)"
            if choose
            else "auto = CUDA, then Apple MPS, then CPU (default: %(default)s)"
        ),
    )
    g.add_argument(
        "--precision",
        default="auto",
        choices=PRECISION_CHOICES,
        help=(
            argparse.SUPPRESS
            if choose
            else "image encoder precision; auto = fp16 on GPU, bf16 on CPUs with native bf16, else fp32"
        ),
    )
    g.add_argument(  # accepted by list/export too, where no image tower runs: torch, no export
        "--engine",
        default="torch" if choose else "auto",
        choices=ENGINE_CHOICES,
        help=(
            argparse.SUPPRESS
            if choose
            else "what runs the image encoder on the CPU: onnx = ONNX Runtime (fp32), torch = PyTorch; "
            "auto = the faster of the two, timed once on this machine and remembered (default: %(default)s)"
        ),
    )
    return p


def tree_options() -> argparse.ArgumentParser:
    """FOLDER and -r of the commands that read an indexed folder (list, export)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("folder", metavar="FOLDER", help="an indexed folder")
    p.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="also the photos of its sub-folders (a folder with no photos of its own shows them anyway)",
    )
    return p


EPILOG = """the window:
  clipiqa-desktop [--catalog FILE|URL] [--model M] [--pretrained T] [--weights FILE] [--device D]
                  [--size N|full|auto] [FOLDER]
each command's options and examples: clipiqa-desktop COMMAND --help

examples:
  clipiqa-desktop ~/shoots/wedding                     open a shoot in the window (and index it)
  clipiqa-desktop index -r ~/shoots/wedding            index it without a window
  clipiqa-desktop list ~/shoots/wedding --sort sharpness

exit status: 0 success, 1 some photos failed (each reported), 2 the command could not run at all
(bad arguments, missing weights, unknown model or device), 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    from .commands import (
        evaluate,
        export,
        groups,
        index,
        learn,
        listing,
        move_rejects,
        rate,
        roots,
        score,
        search,
    )

    parents = {
        "verbose": verbose_options(),
        "catalog": catalog_options(),
        "model": model_options("score"),
        "scores": model_options("choose"),
        "tree": tree_options(),
    }
    parser = argparse.ArgumentParser(
        prog="clipiqa-desktop",
        description="Cull photo shoots with CLIP-IQA quality scores. Without a command, opens the window.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens, for bug reports")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = (index, listing, rate, export, score, move_rejects, evaluate, search, groups, learn, roots)
    for command in commands:
        command.add_parser(sub, parents)
    return parser


COMMANDS = (
    "index",
    "list",
    "rate",
    "export",
    "score",
    "move-rejects",
    "evaluate",
    "search",
    "groups",
    "learn",
    "roots",
)


def build_gui_parser() -> argparse.ArgumentParser:
    """`clipiqa-desktop [options] [FOLDER]`: the window, with the same model/catalog options."""
    parser = argparse.ArgumentParser(prog="clipiqa-desktop", parents=[catalog_options(), model_options()])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens, for bug reports")
    parser.add_argument("folder", nargs="?", metavar="FOLDER", help="a shoot to open (and index)")
    parser.set_defaults(command=None)
    return parser


def first_word(argv: Sequence[str], parser: argparse.ArgumentParser) -> str | None:
    """The first argument that is neither an option of `parser` nor an option's value: the command
    name, or the window's folder. Option names may be abbreviated, as argparse allows."""
    options = {s: action.nargs != 0 for action in parser._actions for s in action.option_strings}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith("-") and arg != "-":
            name = arg.split("=", 1)[0]
            known = [name] if name in options else [s for s in options if s.startswith(name)]
            if len(known) > 1:
                return None  # an ambiguous abbreviation: argparse says so
            if "=" not in arg and len(known) == 1 and options[known[0]]:
                i += 1  # skip the option's value
            i += 1
            continue
        return arg
    return None


def not_a_command(word: str) -> str:
    """Why `clipiqa-desktop WORD` does nothing, when WORD is neither a command nor an existing path."""
    close = difflib.get_close_matches(word.lower(), COMMANDS, n=1, cutoff=0.6)
    if close and os.sep not in word:
        return f"unknown command {word!r} — did you mean {close[0]!r}?"
    if os.sep in word or word.startswith((".", "~")):
        return f"{word}: no such folder to open"
    return (
        f"{word!r} is neither a command ({', '.join(COMMANDS)}) nor an existing folder to open in the window"
    )


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
    gui_parser = build_gui_parser()
    word = first_word(argv, gui_parser)
    if word is not None and word not in COMMANDS and not Path(word).expanduser().exists():
        if word == "help":  # `clipiqa-desktop help [COMMAND]`, as git and pip have it
            topic = argv[argv.index(word) + 1 :][:1]
            build_parser().parse_args([*(t for t in topic if t in COMMANDS), "--help"])  # exits 0
        # a mistyped command must not open the window on a folder that does not exist
        print(f"clipiqa-desktop: {not_a_command(word)}", file=sys.stderr)
        print("  commands: clipiqa-desktop --help; the window: clipiqa-desktop [FOLDER]", file=sys.stderr)
        return EXIT_FATAL
    wants_help = any(a in ("-h", "--help", "--version") for a in argv)
    parser = build_parser() if word in COMMANDS or (word is None and wants_help) else gui_parser
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        from .app import run_app

        return run_app(args)
    problem = _weights_env_problem(args)
    if problem:
        print(f"clipiqa-desktop: {problem}", file=sys.stderr)
        return EXIT_FATAL
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("clipiqa-desktop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `| head`: not an error worth a traceback
        return EXIT_OK


def _weights_env_problem(args: argparse.Namespace) -> str | None:
    """A $CLIPIQA_WEIGHTS file that does not exist, for a command that scores images with it (said
    before torch is imported; --weights itself is checked by argparse)."""
    from .scoring.constants import WEIGHTS_ENV

    env = os.environ.get(WEIGHTS_ENV)
    if args.command not in ("index", "score") or getattr(args, "weights", None) or not env:
        return None
    try:
        weights_arg(env)
    except argparse.ArgumentTypeError as exc:
        return f"{exc} (named by ${WEIGHTS_ENV})"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
