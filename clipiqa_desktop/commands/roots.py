"""`clipiqa-desktop roots`: where each machine sees a shared folder root (catalog/roots.py).

A studio's catalog is shared by machines that mount one NAS at different paths (`/Volumes/Shoots`
on a Mac, `/mnt/shoots` on Linux). Each machine records its mount once; the catalog then stores
the folders below it by the root's name, and every machine finds the same photos, decisions and
scores without indexing them again.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from sqlalchemy import func, select

from ..catalog import CatalogError
from ..catalog import roots as rt
from ..catalog import schema as s
from .common import CommandError, catalog_option, open_catalog

EPILOG = """examples:
  clipiqa-desktop roots                                   the mounts of every machine
  clipiqa-desktop roots add shoots /Volumes/Shoots        on the Mac
  clipiqa-desktop roots add shoots /mnt/shoots            on the Linux machine
  clipiqa-desktop roots add shoots 'S:\\' --machine edit-pc  for a machine not at hand
  clipiqa-desktop roots remove shoots

`add` stores the folders this catalog already has under PATH by the root's name, in one
transaction, so a catalog indexed before it was shared keeps its photos and decisions; a folder
another machine already indexed through the root is merged (one record per photo: the later
decision). `remove` forgets this machine's mount: while other machines mount the root its folders
stay shared and this machine no longer finds them (`add` again maps them); when it was the last
mount they become plain local paths again (those of the removed mount).
Machine name: the host name, or $CLIPIQA_MACHINE.

exit status: 0 done; 2 nothing changed (bad name or path, nested roots, no catalog)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "roots",
        parents=[parents["verbose"], parents["catalog"]],
        help="where each machine sees a shared folder root (a studio's NAS)",
        description="List, add or remove the folder roots a shared catalog maps per machine.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run=run, roots_action="list")
    # --catalog after the action too; SUPPRESS: not given there, the one before it stands
    here = argparse.ArgumentParser(add_help=False)
    here.add_argument(
        "--catalog",
        metavar="FILE|URL",
        default=argparse.SUPPRESS,
        help="catalog file or postgresql:// address (as before the action)",
    )
    actions = p.add_subparsers(dest="roots_action", metavar="ACTION")
    actions.add_parser("list", parents=[here], help="the mounts of every machine (the default)")
    add = actions.add_parser("add", parents=[here], help="record where a machine sees a root")
    add.add_argument("name", metavar="NAME", help=f"the root's name: {rt.NAME_RULE}")
    add.add_argument("path", metavar="PATH", help="the absolute folder where the machine mounts it")
    add.add_argument("--machine", metavar="M", help="another machine's name (default: this machine)")
    remove = actions.add_parser("remove", parents=[here], help="forget where a machine sees a root")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--machine", metavar="M", help="another machine's name (default: this machine)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.roots_action == "add":
            return _add(args)
        if args.roots_action == "remove":
            return _remove(args)
        return _list(args)
    except (CommandError, CatalogError, rt.RootsError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2


def _list(args: argparse.Namespace) -> int:
    catalog = open_catalog(args, readonly=True)
    me = rt.machine_name()
    with catalog._begin() as conn:
        mounts = rt.list_mounts(conn)
        counts = {m.root: _folder_count(conn, m.root) for m in mounts}
    catalog.close()
    if not mounts:
        print(
            "clipiqa-desktop: no folder roots: every folder is stored by its path on the machine that "
            "indexed it. A studio sharing this catalog: "
            f"`clipiqa-desktop roots add NAME PATH{catalog_option(args)}` on each machine (see --help)",
            file=sys.stderr,
        )
        return 0
    width = max(len(m.root) for m in mounts)
    mwidth = max(len(m.machine) for m in mounts)
    for m in mounts:
        mark = "*" if m.machine == me else " "
        print(f"{mark} {m.root:<{width}}  {m.machine:<{mwidth}}  {m.path}")
    for root in sorted({m.root for m in mounts}):
        here = any(m.root == root and m.machine == me for m in mounts)
        state = "" if here else f"; not mounted on this machine ({me}): `roots add {root} PATH`"
        print(f"clipiqa-desktop: {root}: {counts[root]} folder(s) in the catalog{state}", file=sys.stderr)
    print(f"clipiqa-desktop: * = this machine ({me})", file=sys.stderr)
    return 0


def _folder_count(conn: Any, root: str) -> int:
    prefix = rt.stored_path(root)
    q = select(func.count()).where(func.substr(s.folders.c.path, 1, len(prefix)) == prefix)
    return int(conn.execute(q.select_from(s.folders)).scalar_one())


def _mount_path(text: str, here: bool) -> str:
    """PATH of `roots add`: an existing folder (resolved) on this machine; for another machine an
    absolute path of its system, taken as given."""
    if not here:
        if not (PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute()):
            raise CommandError(f"{text} is not an absolute path; give the folder as that machine mounts it")
        stripped = text.rstrip("/\\")
        # never a bare drive: "S:\\" stays "S:\\" ("S:" alone is drive S's current folder)
        if not stripped or stripped == PureWindowsPath(text).drive:
            return text
        return stripped
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise CommandError(
            f"{text} is a relative path; give the absolute folder where this machine mounts the root "
            f"(e.g. {Path(text).expanduser().absolute()})"
        )
    if not path.exists():
        raise CommandError(f"{text} does not exist on this machine (is the share mounted?)")
    if not path.is_dir():
        raise CommandError(f"{text} is not a folder")
    return str(path.resolve())


def _add(args: argparse.Namespace) -> int:
    problem = rt.name_problem(args.name)
    if problem:
        raise CommandError(problem)
    me = rt.machine_name()
    machine = (args.machine or me).lower()
    path = _mount_path(args.path, here=machine == me)
    catalog = open_catalog(args, create=True)  # the first command on a new studio database may be this
    try:
        with catalog.transaction() as tx:
            result = rt.add_mount(tx.conn, args.name, machine, path)
        catalog.reload_roots()
    finally:
        catalog.close()
    who = f"{machine} (this machine)" if machine == me else machine
    moved = f"; was {result.replaced}" if result.replaced else ""
    print(f"clipiqa-desktop: root {args.name!r} is {path} on {who}{moved}", file=sys.stderr)
    if result.converted:
        merged = (
            f", {result.merged} of them merged with the same folder indexed through the root elsewhere"
            if result.merged
            else ""
        )
        print(
            f"clipiqa-desktop: {result.converted} folder(s) under {path} are now stored as "
            f"{rt.stored_path(args.name)}…{merged}",
            file=sys.stderr,
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    me = rt.machine_name()
    machine = (args.machine or me).lower()
    catalog = open_catalog(args)
    try:
        with catalog.transaction() as tx:
            result = rt.remove_mount(tx.conn, args.name, machine)
        catalog.reload_roots()
    finally:
        catalog.close()
    who = "this machine" if machine == me else machine
    print(f"clipiqa-desktop: root {args.name!r} is no longer mounted on {who}", file=sys.stderr)
    if result.still_mounted_by:
        print(
            f"clipiqa-desktop: its folders stay shared ({', '.join(result.still_mounted_by)} still "
            f"mount{'s' if len(result.still_mounted_by) == 1 else ''} it); {who} no longer finds them "
            f"until `clipiqa-desktop roots add {args.name} PATH"
            f"{'' if machine == me else ' --machine ' + shlex.quote(machine)}{catalog_option(args)}`",
            file=sys.stderr,
        )
    elif result.converted:
        print(
            f"clipiqa-desktop: it was the last mount: its {result.converted} folder(s) are stored by "
            f"their paths on {who} again",
            file=sys.stderr,
        )
    return 0
