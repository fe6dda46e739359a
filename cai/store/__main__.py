"""`python -m cai.store ls|verify|gc`: see cai/store/cli.py."""
import sys

from cai.store.cli import main

sys.exit(main(sys.argv[1:]))
