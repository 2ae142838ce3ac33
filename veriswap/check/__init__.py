"""`veriswap check`: one verdict for a suspect file from its C2PA manifest, its footage tags and a detector.

Python use (no CLI needed):

    from veriswap.check import CheckOptions, check_file, check_paths
    rec = check_file("clip.mp4", CheckOptions(trust_anchors=["root.pem"], tag_key="tag.key"))
    rec["verdict"]["word"], rec["verdict"]["exit_code"]

Modules: options (settings + config file), evidence (gathering), verdict (the rules), core (one file),
batch (folders, cores, resumable results), report_json (the versioned schema), report_html, cli.
"""
from .batch import check_paths, expand
from .core import check_file
from .options import CheckOptions, make_options
from .report_json import SCHEMA_VERSION, document
from .verdict import WORDS, decide

__all__ = ["CheckOptions", "make_options", "check_file", "check_paths", "expand", "decide", "document",
           "SCHEMA_VERSION", "WORDS"]
