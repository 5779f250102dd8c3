"""The bridge between a workflow config and the library: validation, grid expansion, run specs and paths.

``workflow/rules/common.smk`` calls only this package, so everything the Snakemake workflow decides can be
tested with pytest.
"""

from pathlib import Path

from lskd.workflow.config import ConfigError, check_config, check_runtime, check_structure, load_config, validate_config
from lskd.workflow.grid import Cell, Experiment, fmt_num

#: The config schema, shipped inside the package (``workflow/schemas/config.schema.yaml`` links to it), so
#: ``lskd check-config`` and ``lskd report --config`` work from any install.
SCHEMA: Path = Path(__file__).with_name("config.schema.yaml")

__all__ = ["SCHEMA", "Cell", "ConfigError", "Experiment", "check_config", "check_runtime", "check_structure", "fmt_num",
           "load_config", "validate_config"]
