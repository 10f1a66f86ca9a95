"""Keywords: ``Priority: High`` lines in the body set issue attributes, the way Redmine's
mail handler reads them. Pure: this module finds the lines and checks the form of their
values; deliver resolves the names in Redmine and takes applied lines out.

Redmine accepts an attribute's English name (``Assigned to``, ``Fixed version``) and
its label in the sender's and the site's language. The sender's language is unknown
here, so every label in LABELS is accepted; no label means two different attributes.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from .config import ALL_CUSTOM_FIELDS, CUSTOM_FIELD_PREFIX, override_token
from .lazy import Pattern
from .plan import Keyword

#: Each attribute's label per language, as Redmine's locale files write them
#: (config/locales/*.yml, field_*), plus the attribute names as Redmine humanizes them.
LABELS: dict[str, dict[str, str]] = {
    "attribute": {
        "project": "Project", "tracker": "Tracker", "status": "Status", "priority": "Priority",
        "category": "Category", "assigned_to": "Assigned to", "fixed_version": "Fixed version",
        "start_date": "Start date", "due_date": "Due date", "estimated_hours": "Estimated hours",
        "done_ratio": "Done ratio", "private": "Is private", "parent_issue": "Parent issue",
    },
    "en": {
        "assigned_to": "Assignee", "fixed_version": "Target version", "estimated_hours": "Estimated time",
        "done_ratio": "% Done", "private": "Private", "parent_issue": "Parent task",
    },
    "ja": {
        "project": "プロジェクト", "tracker": "トラッカー", "status": "ステータス", "priority": "優先度",
        "category": "カテゴリ", "assigned_to": "担当者", "fixed_version": "対象バージョン",
        "start_date": "開始日", "due_date": "期日", "estimated_hours": "予定工数", "done_ratio": "進捗率",
        "private": "プライベート", "parent_issue": "親チケット",
    },
    "de": {
        "project": "Projekt", "priority": "Priorität", "category": "Kategorie", "assigned_to": "Zugewiesen an",
        "fixed_version": "Zielversion", "start_date": "Beginn", "due_date": "Abgabedatum",
        "estimated_hours": "Geschätzter Aufwand", "done_ratio": "% erledigt", "private": "Privat",
        "parent_issue": "Übergeordnetes Ticket",
    },
    "fr": {
        "project": "Projet", "status": "Statut", "priority": "Priorité", "category": "Catégorie",
        "assigned_to": "Assigné à", "fixed_version": "Version cible", "start_date": "Début",
        "due_date": "Echéance", "estimated_hours": "Temps estimé", "done_ratio": "% réalisé",
        "private": "Privée", "parent_issue": "Tâche parente",
    },
    "es": {
        "project": "Proyecto", "tracker": "Tipo", "status": "Estado", "priority": "Prioridad",
        "category": "Categoría", "assigned_to": "Asignado a", "fixed_version": "Versión prevista",
        "start_date": "Fecha de inicio", "due_date": "Fecha fin", "estimated_hours": "Tiempo estimado",
        "done_ratio": "% Realizado", "private": "Privada", "parent_issue": "Tarea padre",
    },
    "it": {
        "project": "Progetto", "status": "Stato", "priority": "Priorità", "category": "Categoria",
        "assigned_to": "Assegnato a", "fixed_version": "Versione prevista", "start_date": "Inizio",
        "due_date": "Scadenza", "estimated_hours": "Tempo stimato", "done_ratio": "% Completato",
        "private": "Privato", "parent_issue": "Attività principale",
    },
    "nl": {
        "priority": "Prioriteit", "category": "Categorie", "assigned_to": "Toegewezen aan",
        "fixed_version": "Versie", "start_date": "Startdatum", "due_date": "Verwachte einddatum",
        "estimated_hours": "Geschatte tijd", "done_ratio": "% voltooid", "private": "Privé",
        "parent_issue": "Hoofdissue",
    },
    "pt-BR": {
        "project": "Projeto", "tracker": "Tipo", "status": "Situação", "priority": "Prioridade",
        "category": "Categoria", "assigned_to": "Atribuído para", "fixed_version": "Versão",
        "start_date": "Início", "due_date": "Data prevista", "estimated_hours": "Tempo estimado",
        "done_ratio": "% Terminado", "private": "Privado", "parent_issue": "Tarefa mãe",
    },
    "pt": {
        "assigned_to": "Atribuído a", "start_date": "Data de início", "due_date": "Data de fim",
        "done_ratio": "% Completo", "status": "Estado", "parent_issue": "Tarefa principal",
    },
    "ru": {
        "project": "Проект", "tracker": "Трекер", "status": "Статус", "priority": "Приоритет",
        "category": "Категория", "assigned_to": "Назначена", "fixed_version": "Версия",
        "start_date": "Дата начала", "due_date": "Срок завершения",
        "estimated_hours": "Оценка временных затрат", "done_ratio": "Готовность", "private": "Частная",
        "parent_issue": "Родительская задача",
    },
    "zh": {
        "project": "项目", "tracker": "跟踪", "status": "状态", "priority": "优先级", "category": "类别",
        "assigned_to": "指派给", "fixed_version": "目标版本", "start_date": "开始日期",
        "due_date": "计划完成日期", "estimated_hours": "预期时间", "done_ratio": "% 完成", "private": "私有",
        "parent_issue": "父任务",
    },
    "zh-TW": {
        "project": "專案", "tracker": "追蹤標籤", "status": "狀態", "priority": "優先權", "category": "分類",
        "assigned_to": "被分派者", "fixed_version": "版本", "start_date": "開始日期", "due_date": "完成日期",
        "estimated_hours": "預估工時", "done_ratio": "完成百分比", "private": "私人", "parent_issue": "父議題",
    },
    "ko": {
        "project": "프로젝트", "tracker": "유형", "status": "상태", "priority": "우선순위", "category": "범주",
        "assigned_to": "담당자", "fixed_version": "목표버전", "start_date": "시작시간", "due_date": "완료기한",
        "estimated_hours": "추정시간", "done_ratio": "진척도", "private": "비공개", "parent_issue": "상위 일감",
    },
    "pl": {
        "tracker": "Typ zagadnienia", "priority": "Priorytet", "category": "Kategoria",
        "assigned_to": "Przypisany do", "fixed_version": "Wersja docelowa", "start_date": "Data rozpoczęcia",
        "due_date": "Data oddania", "estimated_hours": "Szacowany czas", "done_ratio": "% Wykonania",
        "private": "Prywatne", "parent_issue": "Zagadnienie nadrzędne",
    },
    "cs": {
        "tracker": "Fronta", "status": "Stav", "priority": "Priorita", "assigned_to": "Přiřazeno",
        "fixed_version": "Cílová verze", "start_date": "Začátek", "due_date": "Uzavřít do",
        "estimated_hours": "Odhadovaná doba", "done_ratio": "% Hotovo", "private": "Soukromý",
        "parent_issue": "Rodičovský úkol",
    },
    "sv": {
        "tracker": "Ärendetyp", "priority": "Prioritet", "category": "Kategori", "assigned_to": "Tilldelad till",
        "fixed_version": "Versionsmål", "due_date": "Deadline", "estimated_hours": "Estimerad tid",
        "done_ratio": "% Klart", "parent_issue": "Förälderaktivitet",
    },
}

#: The words for yes and no in a ``Private:`` line, per language (general_text_yes/no).
YES_NO: dict[str, tuple[str, str]] = {
    "attribute": ("1", "0"), "en": ("yes", "no"), "ja": ("はい", "いいえ"), "de": ("ja", "nein"),
    "fr": ("oui", "non"), "es": ("sí", "no"), "it": ("sì", "no"), "nl": ("ja", "nee"), "pt-BR": ("sim", "não"),
    "ru": ("да", "нет"), "zh": ("是", "否"), "zh-TW": ("是", "否"), "ko": ("예", "아니오"), "pl": ("tak", "nie"),
    "cs": ("ano", "ne"), "sv": ("ja", "nej"),
}


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _attribute_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for labels in LABELS.values():
        for attribute, label in labels.items():
            names[_fold(label)] = attribute
    return names


ATTRIBUTE_OF: dict[str, str] = _attribute_names()
_BOOLEAN: dict[str, bool] = {
    _fold(word): value for yes, no in YES_NO.values() for word, value in ((yes, True), (no, False))
}
_LINE = Pattern(r"(\S[^:]{0,60}?)[ \t]*:[ \t]*(\S.*?)\s*")
_HOURS = Pattern(r"(\d+(?:[.,]\d+)?)h?|(\d+):(\d+)|(?:(\d+)\s*(?:h|hours?))?\s*(?:(\d+)\s*(?:m|min)?)?", re.I)


def find(text: str, allowed: frozenset[str], *, project_given: bool) -> tuple[tuple[Keyword, ...], tuple[str, ...]]:
    """The keywords of *text* that *allowed* lets through, the first of each kind, and
    a warning for each value that cannot be right (its line stays in the text).

    As in Redmine, the project may always be named when no default project is given.
    """
    allowed = allowed | {"project"} if not project_given else allowed
    found: dict[str, Keyword] = {}
    warnings: list[str] = []
    for number, line in enumerate(text.split("\n")):
        match = _LINE.fullmatch(line)
        if not match:
            continue
        label, raw = match.groups()
        attribute = ATTRIBUTE_OF.get(_fold(label))
        if attribute is None:
            keyword = _custom_field(label, raw, number, allowed)
        elif attribute in allowed:
            keyword = _checked(attribute, raw, number, warnings)
        else:
            keyword = None
        key = attribute or f"{CUSTOM_FIELD_PREFIX}{_fold(label)}"
        if keyword is not None and key not in found:
            found[key] = keyword
    return tuple(found.values()), tuple(warnings)


def _custom_field(label: str, value: str, number: int, allowed: frozenset[str]) -> Keyword | None:
    if CUSTOM_FIELD_PREFIX + override_token(label) in allowed:
        return Keyword("custom_field", value, number, name=label)
    if ALL_CUSTOM_FIELDS in allowed:
        return Keyword("custom_field", value, number, name=label, speculative=True)
    return None


def _checked(attribute: str, raw: str, number: int, warnings: list[str]) -> Keyword | None:
    value, expected = _converted(attribute, raw)
    if value is None:
        warnings.append(f"{attribute} {raw!r} is not {expected}: ignored")
        return None
    return Keyword(attribute, value, number)


def _converted(attribute: str, raw: str) -> tuple[Any, str]:
    """The value in the form Redmine's API takes, or None; and what was expected."""
    if attribute in ("start_date", "due_date"):
        return _date(raw), "a date (YYYY-MM-DD)"
    if attribute == "done_ratio":
        return (int(raw) if re.fullmatch(r"(?:\d|10)?0", raw) else None), "0, 10, … or 100"
    if attribute == "estimated_hours":
        return hours(raw), "a number of hours"
    if attribute == "private":
        return _BOOLEAN.get(_fold(raw)), "yes or no"
    if attribute == "parent_issue":
        match = re.fullmatch(r"#?(\d+)", raw)
        return (int(match.group(1)) if match else None), "an issue number"
    return raw, ""


def _date(text: str) -> str | None:
    if not re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        return None
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def hours(text: str) -> float | None:
    """Hours as Redmine reads them: ``2.5``, ``2,5``, ``2h``, ``2:30``, ``2h30``, ``30m``."""
    match = _HOURS.fullmatch(text.strip())
    if not match or not text.strip():
        return None
    decimal, clock_h, clock_m, h, m = match.groups()
    if decimal:
        return float(decimal.replace(",", "."))
    if clock_h:
        return int(clock_h) + int(clock_m) / 60
    return int(h or 0) + int(m or 0) / 60


def without_lines(text: str, numbers: set[int]) -> str:
    """*text* without the given lines, and without the blank line a removed block leaves
    between two paragraphs."""
    kept: list[str] = []
    for number, line in enumerate(text.split("\n")):
        if number in numbers:
            continue
        if not line.strip() and number - 1 in numbers and kept and not kept[-1].strip():
            continue
        kept.append(line)
    return "\n".join(kept).strip("\n")

