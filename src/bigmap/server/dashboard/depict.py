"""``GET /api/v1/depict/molecule.svg?smiles=``: a 2-D depiction of a molecule (RDKit).

RDKit's own 2-D coordinates (``rdDepictor``) and SVG drawer (``rdMolDraw2D``); no network.
It draws only the SMILES the caller sends (the page takes it from a result it was allowed to
read), yet it asks for a token like every other endpoint.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from bigmap.server.deps import ActorDep
from bigmap.store.errors import BrokerError, Invalid

router = APIRouter(tags=["dashboard"])


class Unavailable(BrokerError):
    status_code = 501


def molecule_svg(smiles: str, width: int = 320, height: int = 240, dark: bool = False) -> str:
    try:
        from rdkit import Chem, RDLogger
        from rdkit.Chem import rdDepictor
        from rdkit.Chem.Draw import rdMolDraw2D
    except ImportError:  # the molecule extra is not installed on this server
        raise Unavailable(
            "molecule pictures need RDKit on the server (pip install 'bigmap[molecule]')"
        ) from None
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise Invalid(f"not a valid SMILES: {smiles!r}", ["smiles"])
    rdDepictor.SetPreferCoordGen(True)
    rdDepictor.Compute2DCoords(mol)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    opts = drawer.drawOptions()
    opts.clearBackground = False
    if dark:
        opts.updateAtomPalette({6: (0.9, 0.9, 0.9), 1: (0.8, 0.8, 0.8)})
        opts.setSymbolColour((0.9, 0.9, 0.9))
        opts.setLegendColour((0.9, 0.9, 0.9))
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


@router.get(
    "/depict/molecule.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def depict_molecule(
    _: ActorDep,
    smiles: str = Query(min_length=1, max_length=2000),
    width: int = Query(default=320, ge=50, le=2000),
    height: int = Query(default=240, ge=50, le=2000),
    dark: bool = False,
) -> Response:
    """An SVG picture of the molecule of ``smiles`` (422 when it is not valid SMILES)."""
    return Response(
        molecule_svg(smiles, width, height, dark),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=3600"},
    )
