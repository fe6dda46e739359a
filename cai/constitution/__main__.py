"""`python -m cai.constitution import|show ...`: convert upstream constitutions, inspect composed ones."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from cai.errors import exit_status


def parser() -> argparse.ArgumentParser:
    """The command line: `import` and `show` subcommands."""
    top = argparse.ArgumentParser(prog="python -m cai.constitution", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="convert upstream constitution files into a config dir")
    imp.add_argument("--format", required=True, choices=["anthropic", "llm-swarm"],
                     help="anthropic: the paper repo's prompts/*.json, given together; llm-swarm: one JSON file")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("-o", "--out", required=True, type=Path, metavar="DIR",
                     help="config dir to write; use it with hydra.searchpath=[file://DIR]")
    imp.add_argument("--name", help="constitution name, also the id prefix (default: the format name)")
    show = sub.add_parser("show", help="compose, validate and print a constitution")
    show.add_argument("name", metavar="NAME", help="constitution to show (conf/constitution/NAME.yaml)")
    show.add_argument("--model", help="render the exemplar with this conf/model option's chat template")
    show.add_argument("--config-dir", type=Path, metavar="DIR", help="extra config dir, e.g. an import's output")
    show.add_argument("--exemplar", metavar="ID", help="critique/revision exemplar to render (default: the first)")
    return top


def run(args: argparse.Namespace) -> None:
    """Carry out one parsed command."""
    if args.command == "import":
        from cai.constitution.importers import run_import

        path = run_import(args.format, args.files, args.out, args.name)
        name = path.stem
        print(f"wrote {path} and its principle/exemplar files under {path.parent}")
        print(f"inspect: python -m cai.constitution show {name} --config-dir {args.out}")
        # smol_sl: the SL-CAI half reads only critique-revision principles; an imported set may lack comparisons
        print(f"use:     python -m cai recipe=smol_sl constitution={name} "
              f"'hydra.searchpath=[file://{args.out.resolve()}]'")
    else:
        from cai.constitution.show import show

        show(args.name, model=args.model, config_dir=args.config_dir, exemplar=args.exemplar)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; a CaiError is printed as one line on stderr with exit status 2."""
    args = parser().parse_args(argv)
    return exit_status(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
