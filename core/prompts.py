"""Prompt files: one system prompt and one user template (with ``{text}``) per task."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import PromptError

PLACEHOLDER = "{text}"
DEFAULT_PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PromptSet:
    """The exact prompt texts a job uses, with where they came from and their hashes."""

    system: str
    user_template: str
    system_path: str
    user_path: str

    @property
    def system_sha256(self) -> str:
        return sha256_text(self.system)

    @property
    def user_sha256(self) -> str:
        return sha256_text(self.user_template)

    def render_user(self, text: str) -> str:
        # str.replace, not str.format: templates may hold literal braces (JSON examples).
        return self.user_template.replace(PLACEHOLDER, text)

    def to_record(self) -> dict[str, str]:
        """What the registry stores, so any result can be reproduced."""
        return {
            "system": self.system,
            "system_path": self.system_path,
            "system_sha256": self.system_sha256,
            "user_template": self.user_template,
            "user_path": self.user_path,
            "user_sha256": self.user_sha256,
        }

    @classmethod
    def from_record(cls, record: dict[str, str]) -> "PromptSet":
        if not record.get("system") or not record.get("user_template"):
            # a job imported from the previous tool whose prompt texts were not found
            raise PromptError("This job does not record its prompt texts, so its requests cannot be made again.")
        return cls(
            system=record["system"],
            user_template=record["user_template"],
            system_path=record.get("system_path", ""),
            user_path=record.get("user_path", ""),
        )


def default_prompt_paths(task_name: str, prompt_dir: Path = DEFAULT_PROMPT_DIR) -> tuple[Path, Path]:
    return prompt_dir / f"{task_name}.system.txt", prompt_dir / f"{task_name}.user.txt"


def _read(path: Path, role: str) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PromptError(f"{role} prompt file not found: {path}") from None
    except UnicodeDecodeError:
        raise PromptError(f"{role} prompt file {path} is not UTF-8 text.") from None
    except OSError as exc:
        raise PromptError(f"{role} prompt file {path} cannot be read: {exc.strerror}") from None
    if not text.strip():
        raise PromptError(f"{role} prompt file {path} is empty.")
    return text.strip("\n")


def validate_user_template(template: str, source: str) -> None:
    """A user template must place the paragraph exactly where ``{text}`` stands."""
    if PLACEHOLDER not in template:
        raise PromptError(
            f"User prompt {source} has no {PLACEHOLDER} placeholder: add {PLACEHOLDER} where the "
            "paragraph should go."
        )


def load_prompts(
    task_name: str,
    *,
    system_path: Path | None = None,
    user_path: Path | None = None,
    prompt_dir: Path = DEFAULT_PROMPT_DIR,
) -> PromptSet:
    """Load a task's prompts, defaulting to the shipped files; custom files override either one."""
    default_system, default_user = default_prompt_paths(task_name, prompt_dir)
    system_file = Path(system_path) if system_path else default_system
    user_file = Path(user_path) if user_path else default_user
    system = _read(system_file, "System")
    user = _read(user_file, "User")
    validate_user_template(user, str(user_file))
    return PromptSet(system=system, user_template=user, system_path=str(system_file), user_path=str(user_file))


def prompts_from_text(*, system: str, user_template: str, label: str = "edited") -> PromptSet:
    """Prompts typed in the dashboard rather than read from files."""
    if not system.strip():
        raise PromptError("The system prompt is empty.")
    validate_user_template(user_template, f"({label})")
    return PromptSet(system=system, user_template=user_template, system_path=label, user_path=label)


def score_meanings(task: str, system_prompt: str | None = None) -> dict[str, str]:
    """What each score column of ``task`` means, quoted from the criteria of its system prompt
    (a job's recorded prompt, else the shipped file), so pages explain scores with the very
    words the model was given. A paragraph of the prompt describes a response field when it
    starts with ``<Field>:`` or ``Give <Field> ...``; a field the prompt does not describe gets
    a plain 0/1 sentence."""
    from core.tasks import TASKS  # tasks need no prompts at import; keep it that way

    spec = TASKS[task]
    if system_prompt is None:
        try:
            system_prompt = load_prompts(task).system
        except PromptError:
            system_prompt = ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", system_prompt or "") if p.strip()]
    meanings: dict[str, str] = {}
    for response_field, column in spec.columns.items():
        if column not in spec.score_columns:
            continue
        pattern = re.compile(rf"^(?:{re.escape(response_field)}\s*:|Give\s+{re.escape(response_field)}\b)")
        found = [p for p in paragraphs if pattern.match(p)]
        meanings[column] = ("\n\n".join(found) if found
                            else f"1 when the paragraph shows {response_field}, else 0 "
                                 "(the prompt does not describe it).")
    return meanings
