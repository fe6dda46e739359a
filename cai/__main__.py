"""`python -m cai recipe=NAME [key=value ...]` (or the `cai` command), `-m ...` for Hydra multirun sweeps, and
`cai store ls|verify|gc` for the artifact store."""
from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cai.config import check_recipe, register_schemas
from cai.config_files import check_user_configs
from cai.errors import CaiError
from cai.paths import PRIMARY, conf_dir

log = logging.getLogger("cai")


def app(cfg: DictConfig) -> None:
    """Plan and run the composed recipe in this job's run directory."""
    from cai import runner

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        runner.run(cfg, run_dir)
    except CaiError as err:
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # nothing half-written is published; partial work stays for the rerun to resume
        log.warning("interrupted")
        print("interrupted: run the same command again to resume (finished nodes are cached, and stages continue "
              "from their last chunk or checkpoint)", file=sys.stderr)
        sys.exit(130)


def main() -> None:
    """Check the recipe name before Hydra composes (for a clear list of recipes), then hand over to Hydra;
    `cai store ls|verify|gc` goes to cai.store.cli and `cai serve` to cai.serve instead."""
    if sys.argv[1:2] == ["store"]:
        from cai.store.cli import main as store_main

        sys.exit(store_main(sys.argv[2:]))
    if sys.argv[1:2] == ["serve"]:
        from cai.serve import main as serve_main

        sys.exit(serve_main(sys.argv[2:]))
    # SIGTERM unwinds like Ctrl-C would, so engines close: vLLM's worker processes outlive a parent killed outright
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        check_recipe(sys.argv[1:])
        check_user_configs(sys.argv[1:])
        register_schemas()
        config_path = str(conf_dir())
    except CaiError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    hydra.main(version_base="1.3", config_path=config_path, config_name=PRIMARY)(app)()


if __name__ == "__main__":
    main()
