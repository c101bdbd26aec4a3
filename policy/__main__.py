"""What `pulumi preview/up --policy-pack policy` runs (via `python -m pulumi.policy`).

The CLI runs this directory as a script, so the repository root is put on the import path to
load the rules as the `policy` package: the tests import the very same modules.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policy.policies import PACK_NAME, build_policies

PolicyPack(name=PACK_NAME, policies=build_policies())
