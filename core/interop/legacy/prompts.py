"""The previous tool's prompts for an imported job: the system prompt as sent (from the request
file) or from its prompt files, the user template from its prompt files or its shipped default,
and that ``str.format`` template turned into this product's ``{text}`` template.

Prompt files are looked up by file name only, in the prompt folders of the given layout, and a
link out of the folder is not followed.
"""

from __future__ import annotations

from core.interop.legacy.layout import Layout, file_name
from core.interop.legacy.metadata import LegacyMetadata
from core.interop.legacy.rows import DEFAULT_USER_TEMPLATE, PLACEHOLDER, RequestLines
from core.safefs import UnsafePath, check_within, contained

_PROMPT_LIMIT = 1024 * 1024


def _read_prompt(name: str | None, layout: Layout) -> tuple[str, str] | None:
    """(text, path) of a prompt file found by its file name in the prompt folders."""
    if not name:
        return None
    plain = file_name(name)
    for folder in layout.prompt_dirs:
        try:
            path = contained(folder, plain)
            check_within(folder, path)  # a link out of the folder is not followed
        except UnsafePath:
            continue
        try:
            if path.is_file() and path.stat().st_size <= _PROMPT_LIMIT:
                text = path.read_text(encoding="utf-8").strip()  # the previous tool stripped them too
                if text:
                    return text, str(path)
        except (OSError, UnicodeDecodeError):
            continue
    return None


def user_template(meta: LegacyMetadata, layout: Layout) -> tuple[str | None, str | None]:
    """(template, where it came from): the recorded (or default-named) template file when it
    holds ``{text}``; else the previous tool's default, unless a custom file was recorded and is
    gone (then (None, None): its shape is unknown)."""
    found = _read_prompt(meta.user_prompt_file or "user_prompt_template.txt", layout)
    if found is not None and PLACEHOLDER in found[0]:
        return found
    if meta.user_prompt_file:  # a custom template that is gone: its shape is unknown
        return None, None
    return DEFAULT_USER_TEMPLATE, "the previous tool's default user template"


def system_prompt(meta: LegacyMetadata, layout: Layout, lines: RequestLines | None) -> tuple[str | None, str | None]:
    """(system prompt, where it came from): as sent in the request file when there is one,
    else from the recorded (or default-named) prompt file; (None, None) when neither is found."""
    if lines is not None and lines.system:
        return lines.system, f"request file {lines.path.name} (as sent)"
    found = _read_prompt(meta.system_prompt_file or f"{meta.task}_system_prompt.txt", layout)
    return found if found is not None else (None, None)


def our_template(template: str | None) -> str:
    """The previous tool's ``str.format`` template as our ``{text}`` template (braces doubled
    for format are single in what it sent)."""
    if not template:
        return ""
    before, after = template.split(PLACEHOLDER, 1)
    return before.replace("{{", "{").replace("}}", "}") + PLACEHOLDER + after.replace("{{", "{").replace("}}", "}")
