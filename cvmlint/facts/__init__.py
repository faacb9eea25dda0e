"""The fact model: what a recipe or an image is, as typed records with provenance.

>>> from cvmlint.facts import Items, Package, Provenance
>>> pkgs = Items([Package(name="bash", version="5.2.15-2", where=Provenance(file="mkosi.conf", line=3))])
>>> [str(p.where) for p in pkgs]
['mkosi.conf:3']
"""

from cvmlint.facts.model import (
    RECORD_TYPES,
    Boot,
    BootBinary,
    BootEntry,
    Build,
    ConfigOption,
    DebVersion,
    Facts,
    File,
    Kernel,
    KernelStrings,
    Module,
    Mount,
    Package,
    Param,
    Partition,
    Patch,
    Record,
    RootFs,
    System,
    Target,
    Verity,
)
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.facts.serialize import dump_facts, facts_from_json, facts_to_json, load_facts_file

__all__ = [
    "RECORD_TYPES",
    "Boot",
    "BootBinary",
    "BootEntry",
    "Build",
    "ConfigOption",
    "DebVersion",
    "Facts",
    "File",
    "Items",
    "Kernel",
    "KernelStrings",
    "Module",
    "Mount",
    "Package",
    "Param",
    "Partition",
    "Patch",
    "Provenance",
    "Record",
    "RootFs",
    "System",
    "Target",
    "Unknown",
    "Verity",
    "dump_facts",
    "facts_from_json",
    "facts_to_json",
    "load_facts_file",
]
