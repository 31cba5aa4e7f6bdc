"""Reading the panel's HTML in tests: a small tree of elements, found by id, tag and class."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

from flask.testing import FlaskClient

# Elements without an end tag.
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


@dataclass
class Element:
    """One element: its tag, attributes (None for a bare attribute), children and text."""

    tag: str
    attrs: dict[str, str | None]
    children: list[Element | str] = field(default_factory=list, repr=False)
    parent: Element | None = field(default=None, repr=False)

    def get(self, name: str) -> str | None:
        return self.attrs.get(name)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    @property
    def text(self) -> str:
        """The text of the element and its descendants, as a browser's textContent."""
        return "".join(child if isinstance(child, str) else child.text for child in self.children)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, *, cls: str | None = None) -> list[Element]:
        """The descendants (and itself) with ``tag`` and the class ``cls``, in document order."""
        return [
            element
            for element in self.iter()
            if (tag is None or element.tag == tag) and (cls is None or cls in element.classes)
        ]

    def find(self, tag: str | None = None, *, cls: str | None = None) -> Element:
        found = self.find_all(tag, cls=cls)
        assert found, f"no <{tag or '*'} class={cls!r}> in <{self.tag}>"
        return found[0]

    def by_id(self, element_id: str) -> Element:
        found = [element for element in self.iter() if element.get("id") == element_id]
        assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
        return found[0]

    def has_id(self, element_id: str) -> bool:
        return any(element.get("id") == element_id for element in self.iter())


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self._open = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), parent=self._open)
        self._open.children.append(element)
        if tag not in _VOID:
            self._open = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open.children.append(Element(tag, dict(attrs), parent=self._open))

    def handle_endtag(self, tag: str) -> None:
        element: Element | None = self._open
        while element is not None and element.tag != tag:
            element = element.parent
        assert element is not None and element.parent is not None, f"stray </{tag}>"
        self._open = element.parent

    def handle_data(self, data: str) -> None:
        self._open.children.append(data)


def parse(html: str) -> Element:
    """The document's tree; fails the test on an end tag that closes nothing."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def get_page(client: FlaskClient, url: str, status: int = 200) -> Element:
    """GET ``url``, check its status and parse it."""
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return parse(response.get_data(as_text=True))


def csp_problems(document: Element) -> list[str]:
    """What the Content-Security-Policy would refuse: style attributes, inline scripts, handlers."""
    problems = []
    for element in document.iter():
        if "style" in element.attrs:
            problems.append(f"<{element.tag} style=...>")
        if element.tag == "style":
            problems.append("<style>")
        if element.tag == "script" and (not element.get("src") or element.text.strip()):
            problems.append("inline <script>")
        problems += [
            f"<{element.tag} {name}=...>" for name in element.attrs if name.startswith("on")
        ]
    return problems
