"""reStructuredText to blocks with docutils, Sphinx's directives and roles
understood: section titles become the section path, admonitions and prose
directives keep their content, code blocks are kept line by line, includes and
raw HTML are never read, and what is left out is written in the notes."""

import io
import re
from collections import defaultdict

from faqforge.documents.blocks import blocks_of, code_block, section_of

SPHINX_PROSE = {"versionadded": "New in version", "versionchanged": "Changed in version",
                "deprecated": "Deprecated since version", "versionremoved": "Removed in version",
                "seealso": "See also", "todo": "To do", "only": None, "glossary": None, "hlist": None,
                "centered": None, "tab": None, "tabs": None, "group-tab": None, "card": None, "grid": None,
                "grid-item-card": None, "tab-item": None, "tab-set": None, "dropdown": None}
SPHINX_NO_TEXT = ("toctree", "automodule", "autoclass", "autofunction", "automethod", "autoattribute",
                  "autoexception", "autodata", "autosummary", "autoprogram", "literalinclude", "index", "highlight",
                  "currentmodule", "module", "py:module", "py:currentmodule", "sectionauthor", "codeauthor",
                  "tabularcolumns", "graphviz", "mermaid", "plot", "doctest", "testcode", "testoutput", "testsetup")
SPHINX_ROLES = ("ref", "doc", "term", "abbr", "command", "dfn", "envvar", "file", "guilabel", "kbd", "keyword",
                "mailheader", "makevar", "manpage", "menuselection", "mimetype", "newsgroup", "option", "program",
                "regexp", "samp", "token", "any", "numref", "download", "eq", "class", "func", "meth", "mod", "attr",
                "data", "exc", "obj", "const", "type", "confval",
                *(f"py:{r}" for r in ("class", "func", "meth", "mod", "attr", "data", "exc", "obj", "const", "type")),
                *(f"std:{r}" for r in ("ref", "doc", "term", "option", "envvar")))
_registered = False


def _register_sphinx():
    """Teach docutils Sphinx's directives and roles, once per process."""
    global _registered
    if _registered:
        return
    from docutils import nodes, utils
    from docutils.parsers.rst import Directive, directives, roles
    from docutils.parsers.rst.directives.body import CodeBlock

    class Prose(Directive):
        optional_arguments, final_argument_whitespace, has_content = 1, True, True
        option_spec = defaultdict(lambda: directives.unchanged)

        def run(self):
            node = nodes.container()
            label, argument = SPHINX_PROSE.get(self.name), " ".join(self.arguments)
            if label and label.endswith("version") and argument:
                version, *rest = argument.split(None, 1)
                label, argument = f"{label} {version}:", " ".join(rest)
            if label or argument:
                inline, messages = self.state.inline_text(argument, self.lineno)
                node += nodes.paragraph("", "", nodes.Text(f"{label} " if label else ""), *inline, *messages)
            self.state.nested_parse(self.content, self.content_offset, node)
            return [node]

    class Code(CodeBlock):  # Sphinx's code-block takes caption, linenos, emphasize-lines, ...
        option_spec = defaultdict(lambda: directives.unchanged, CodeBlock.option_spec)

    class NoText(Directive):
        optional_arguments, final_argument_whitespace, has_content = 1, True, True
        option_spec = defaultdict(lambda: directives.unchanged)

        def run(self):
            self.state.document.settings.faqforge_notes.append(
                f"line {self.lineno}: directive {self.name!r} has no text of its own (navigation or code); left out")
            return []

    def text_role(name, rawtext, text, lineno, inliner, options=None, content=None):
        title = re.sub(r"\s*<[^>]*>$", "", utils.unescape(text)).strip()
        if title.startswith("~"):
            title = title[1:].rsplit(".", 1)[-1]
        return [nodes.literal(rawtext, title.lstrip("!"))], []

    for name in SPHINX_PROSE:
        directives.register_directive(name, Prose)
    for name in SPHINX_NO_TEXT:
        directives.register_directive(name, NoText)
    for alias in ("code-block", "sourcecode"):
        directives.register_directive(alias, Code)
    for name in SPHINX_ROLES:
        roles.register_local_role(name, text_role)
    _registered = True


def _rst_blocks(node, path, notes):
    """Blocks of a docutils node's children, depth first."""
    from docutils import nodes
    for child in node.children:
        if isinstance(child, nodes.section):
            title = child.next_node(nodes.title)
            yield from _rst_blocks(child, path + [" ".join(title.astext().split())] if title else path, notes)
        elif isinstance(child, (nodes.title, nodes.comment, nodes.substitution_definition, nodes.target,
                                nodes.raw, nodes.pending)):
            continue
        elif isinstance(child, nodes.topic) and "contents" in child["classes"]:
            continue  # a generated table of contents
        elif isinstance(child, (nodes.paragraph, nodes.term, nodes.rubric, nodes.line, nodes.attribution,
                                nodes.caption)):
            yield from blocks_of(child.astext(), section_of(path))
        elif isinstance(child, (nodes.literal_block, nodes.doctest_block, nodes.math_block)):
            yield from code_block(child.astext(), section_of(path))
        elif isinstance(child, (nodes.definition_list_item, nodes.field)):
            name, *body = child.children  # term (or field name), then its definition
            text = " ".join(" ".join(b.astext().split()) for b in body)
            yield from blocks_of(f"{' '.join(name.astext().split())}: {text}", section_of(path))
        elif isinstance(child, nodes.row):
            yield from blocks_of(" | ".join(" ".join(e.astext().split()) for e in child.children), section_of(path))
        elif isinstance(child, nodes.Admonition):
            inner = list(_rst_blocks(child, path, notes))
            label = child.tagname.capitalize() if child.tagname != "admonition" else None
            if label and inner:
                inner[0] = {**inner[0], "text": f"{label}: {inner[0]['text']}"}
            yield from inner
        elif isinstance(child, nodes.system_message):
            yield from _rst_message(child, path, notes)
        else:
            yield from _rst_blocks(child, path, notes)


def _rst_message(message, path, notes):
    """A docutils warning or error in the document, noted; when it is a directive
    docutils could not run, the directive's content is kept as text."""
    from docutils import nodes
    if message["level"] < 2:
        return
    what = " ".join(message.children[0].astext().split()).rstrip(".") if message.children else "error"
    source = message.next_node(nodes.literal_block)
    body = ""
    if source is not None:  # the text docutils could not interpret: a directive, a malformed table
        lines = source.astext().splitlines()
        if lines and lines[0].startswith(".."):
            lines = [ln for ln in lines[1:] if not ln.strip().startswith(":")]
        body = "\n".join(ln for ln in lines if not re.fullmatch(r"[+=|\- ]*", ln))
    notes.append(f"line {message.get('line')}: {what}" + ("; its text kept as it is" if body.strip() else ""))
    yield from blocks_of(body, section_of(path))


def read_rst(lines, notes=None):
    """Blocks of a reStructuredText document, parsed by docutils with Sphinx's
    directives and roles: section titles become the section path, the content
    of admonitions (note, warning, ...) and of prose directives is kept, code
    blocks line by line; includes and raw HTML are never read."""
    from docutils.core import publish_doctree
    _register_sphinx()
    notes = [] if notes is None else notes
    doctree = publish_doctree("".join(lines), settings_overrides={
        "report_level": 3, "halt_level": 5, "warning_stream": io.StringIO(), "file_insertion_enabled": False,
        "raw_enabled": False, "doctitle_xform": False, "sectsubtitle_xform": False, "_disable_config": True,
        "faqforge_notes": notes})
    yield from _rst_blocks(doctree, [], notes)


