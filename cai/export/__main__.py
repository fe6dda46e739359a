"""`python -m cai.export RUN_DIR NODE -o DIR [--push-to-hub ORG/NAME]`: a Hub-ready folder for one node's artifact."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cai.errors import CaiError, exit_status, first_line


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m cai.export", description="Write a Hub-ready folder (data as Parquet "
                                "per split, or weights, and a README card) for one node of a run.")
    p.add_argument("run_dir", type=Path, help="a run directory: $CAI_HOME/runs/<recipe>/<time>/")
    p.add_argument("node", help="the node to export, e.g. sl_data, prefs, sft")
    p.add_argument("-o", "--output", type=Path, required=True, help="a new (or empty) folder to write")
    p.add_argument("--license", default="apache-2.0", help="the card's license field (default: apache-2.0)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="rows held out as test_* splits (by id hash)")
    p.add_argument("--push-to-hub", metavar="ORG/NAME", help="then upload the folder with huggingface_hub")
    p.add_argument("--private", action="store_true", help="create the Hub repository private")
    return p


def push(folder: Path, repo_id: str, kind: str, private: bool) -> str:
    """Create the repository if needed and upload the folder; a failure (offline, no token) is a CaiError."""
    from huggingface_hub import HfApi

    repo_type = "dataset" if kind == "dataset" else "model"
    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type)
    except Exception as err:  # huggingface_hub raises HTTP, connection and auth errors of many types
        raise CaiError(f"--push-to-hub {repo_id}: could not upload ({type(err).__name__}: {first_line(err)}); the "
                       f"folder {folder} is complete, upload it later with `huggingface-cli upload`") from None
    return f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


def main(argv=None) -> int:
    """Export (and push); a user error is one line on stderr and exit status 2."""
    args = parser().parse_args(argv)
    if args.push_to_hub is not None and args.push_to_hub.count("/") != 1:
        print(f"error: --push-to-hub {args.push_to_hub!r}: give ORG/NAME", file=sys.stderr)
        return 2
    return exit_status(lambda: export_and_push(args))


def export_and_push(args) -> None:
    """Write the folder, then push it when asked."""
    from cai.export import export

    written = export(args.run_dir, args.node, args.output, args.license, args.test_fraction)
    print(f"exported {args.node} ({written['kind']}) to {args.output}")
    if args.push_to_hub:
        print(f"pushed: {push(args.output, args.push_to_hub, written['kind'], args.private)}")


if __name__ == "__main__":
    sys.exit(main())
