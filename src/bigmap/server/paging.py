"""Pages of list endpoints: ``limit`` and ``offset`` cut in SQL, the next page in a
``Link: <...>; rel="next"`` header (RFC 8288), present only when there is one.

Native lists answer ``page_size`` items unless ``limit`` asks for another number (at most
``page_size_max``: more is cut to it, and the ``Link`` header leads on). FINALES lists keep
FINALES' shape (a plain JSON list) and answer at most ``finales_max_items``, with the same
``Link`` header and ``offset`` for the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request, Response

T = TypeVar("T")


@dataclass
class Page:
    limit: int
    offset: int
    request: Request
    response: Response

    @property
    def fetch(self) -> int:
        """Rows to ask the database for: one more than the page, to know if there is more."""
        return self.limit + 1

    def cut(self, rows: list[T]) -> list[T]:
        """The page, and the ``Link`` to the next one when ``rows`` has more than the page."""
        if len(rows) > self.limit:
            nxt = self.request.url.include_query_params(
                offset=self.offset + self.limit, limit=self.limit
            )
            self.response.headers["Link"] = f'<{nxt}>; rel="next"'
        return rows[: self.limit]


def _page(native: bool) -> Callable[..., Page]:
    def dep(
        request: Request,
        response: Response,
        limit: int | None = Query(
            default=None,
            ge=1,
            description="items per page (default and maximum set by the server: page_size, "
            "page_size_max; finales_max_items for FINALES paths); the next page is in the "
            "Link header",
        ),
        offset: int = Query(default=0, ge=0, le=10**9, description="items to skip"),
    ) -> Page:
        settings = request.app.state.settings
        if native:
            default, most = settings.page_size, settings.page_size_max
        else:
            default = most = settings.finales_max_items
        return Page(min(limit or default, most), offset, request, response)

    return dep


PageDep = Annotated[Page, Depends(_page(native=True))]
FinalesPageDep = Annotated[Page, Depends(_page(native=False))]
