"""An import-linter contract type: ``only`` — a package may reach into another only through a given part of it.

    [[tool.importlinter.contracts]]
    type = "only"
    source_modules = ["modelgate_operator"]
    restricted_package = "modelgate_proxy"
    allowed_modules = ["modelgate_proxy.spec"]

Every module of ``restricted_package`` that ``source_modules`` import, directly or through any chain of
imports, must be one of ``allowed_modules`` (or inside one of them), or the (empty) package itself. A deny-list
would go stale as the restricted package grows; this states the rule once. Registered in ``pyproject.toml``
(``contract_types``); lint-imports finds this module through ``hack/`` on the venv's path (``hack/venv.sh``).
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output


class OnlyContract(Contract):
    type_name = "only"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    restricted_package = fields.ModuleField()
    allowed_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        restricted: str = self.restricted_package.name  # type: ignore[attr-defined]
        allowed = [m.name for m in self.allowed_modules]  # type: ignore[attr-defined]
        broken: list[dict[str, Any]] = []
        for source in (m.name for m in self.source_modules):  # type: ignore[attr-defined]
            reached = graph.find_upstream_modules(source, as_package=True)
            for module in sorted(reached):
                if not _inside(module, restricted) or module == restricted:
                    continue
                if any(_inside(module, ok) for ok in allowed):
                    continue
                chain = graph.find_shortest_chain(importer=source, imported=module, as_packages=True)
                broken.append({"source": source, "module": module, "chain": list(chain or ())})
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            output.print_error(f"{item['source']} reaches {item['module']}: {' -> '.join(item['chain'])}")
            output.new_line()


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")
